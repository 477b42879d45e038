import { expect } from 'chai';
import { AesGcmFieldCipher } from '../../../../src/adapters/crypto/aes-gcm-field-cipher';
import { ParallelFieldCipher } from '../../../../src/adapters/crypto/parallel-field-cipher';
import type { StoredField } from '../../../../src/application/ports';

/**
 * ParallelFieldCipher shares a large decryptAll with decrypt threads: its results and its errors
 * must be exactly AesGcmFieldCipher's, whichever thread opened a value, and a thread that dies
 * must not lose its part. Bad input tried: a tampered value in the caller's part and in a thread's
 * part, a value under an unknown key, a value moved to another record.
 */
describe('ParallelFieldCipher', function () {
  this.timeout(20_000);
  const ring = [{ id: 'k1', key: Buffer.alloc(32, 7) }];
  const sequential = new AesGcmFieldCipher(ring);
  let cipher: ParallelFieldCipher;

  const batch = (n: number): StoredField[] =>
    Array.from({ length: n }, (_, i) => {
      const place = { table: 'captures', column: 'raw_content', userId: 'u1', recordId: `c${i}` };
      // Every 7th value was written before encryption (passed through); some are not ASCII.
      const text = i % 5 === 0 ? `note ${i} héllo 👋` : `note ${i}`;
      return { stored: i % 7 === 0 ? text : sequential.encrypt(text, place), place };
    });

  beforeEach(async () => {
    cipher = new ParallelFieldCipher(ring, { threads: 1, minBatch: 50 });
    expect(await cipher.warmUp(), 'threads ready').to.equal(1);
  });
  afterEach(() => cipher.close());

  it('decrypts a large batch with a thread, to exactly what AesGcmFieldCipher gives', async () => {
    const items = batch(600);
    const r = await cipher.decryptAll(items);
    expect(cipher.sharedBatches).to.equal(1);
    expect(r._unsafeUnwrap()).to.deep.equal(sequential.decryptList(items)._unsafeUnwrap());
    expect(r._unsafeUnwrap()[5]).to.equal('note 5 héllo 👋');
  });

  it('keeps small batches on the caller thread', async () => {
    const items = batch(49);
    expect((await cipher.decryptAll(items))._unsafeUnwrap()).to.deep.equal(sequential.decryptList(items)._unsafeUnwrap());
    expect(cipher.sharedBatches).to.equal(0);
  });

  it("fails with AesGcmFieldCipher's error for the first bad value, in the caller's part or a thread's", async () => {
    for (const bad of [3, 500]) {
      const items = batch(600);
      const good = items[bad]!;
      // Tampered: the ciphertext's last character changed.
      const tampered = good.stored.slice(0, -2) + (good.stored.endsWith('AA') ? 'BB' : 'AA');
      items[bad] = { stored: tampered, place: good.place };
      const r = await cipher.decryptAll(items);
      const expected = sequential.decryptList(items)._unsafeUnwrapErr();
      expect(r._unsafeUnwrapErr(), `bad value at ${bad}`).to.deep.equal(expected);
      expect(String(expected.cause)).to.match(new RegExp(`record c${bad} .*tampered`));
    }
    const moved = batch(600);
    moved[550] = { stored: moved[551]!.stored, place: moved[550]!.place };
    expect(String((await cipher.decryptAll(moved))._unsafeUnwrapErr().cause)).to.match(/record c550 .*copied from another place/);
    const unknown = batch(600);
    unknown[300] = { stored: new AesGcmFieldCipher([{ id: 'other', key: Buffer.alloc(32, 9) }]).encrypt('x', unknown[300]!.place), place: unknown[300]!.place };
    expect(String((await cipher.decryptAll(unknown))._unsafeUnwrapErr().cause)).to.match(/key "other" is not in FIELD_ENCRYPTION_KEYS/);
  });

  it('decrypts the part of a thread that dies meanwhile on the caller thread, and starts the thread again later', async () => {
    const items = batch(600);
    // Stopped as the batch is shared: the thread is still taken for ready, and never answers.
    const stopping = cipher.close();
    const pending = cipher.decryptAll(items);
    await stopping;
    expect((await pending)._unsafeUnwrap()).to.deep.equal(sequential.decryptList(items)._unsafeUnwrap());
    expect(cipher.partsHandedBack).to.equal(1);
    expect(await cipher.warmUp(), 'started again').to.equal(1);
    expect((await cipher.decryptAll(items))._unsafeUnwrap()).to.deep.equal(sequential.decryptList(items)._unsafeUnwrap());
    expect(cipher.sharedBatches).to.equal(2);
  });
});
