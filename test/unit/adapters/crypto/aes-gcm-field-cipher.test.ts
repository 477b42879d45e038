import { expect } from 'chai';
import { AesGcmFieldCipher } from '../../../../src/adapters/crypto/aes-gcm-field-cipher';

/** The FieldCipher contract (src/application/ports/field-cipher.ts) on AES-256-GCM. */
describe('AesGcmFieldCipher', () => {
  const place = { table: 'captures', column: 'raw_content', userId: 'u1', recordId: 'c1' };
  const a = { id: 'a', key: Buffer.alloc(32, 1) };
  const b = { id: 'b', key: Buffer.alloc(32, 2) };

  it('round-trips with a fresh nonce per value, under the first key of the ring', () => {
    const cipher = new AesGcmFieldCipher([a]);
    const one = cipher.encrypt('héllo 👋', place);
    const two = cipher.encrypt('héllo 👋', place);
    expect(one).to.match(/^enc:v1:a:/).and.not.equal(two);
    expect(cipher.decrypt(one, place)._unsafeUnwrap()).to.equal('héllo 👋');
    expect(cipher.decrypt(cipher.encrypt('', place), place)._unsafeUnwrap()).to.equal('');
  });

  it('binds a value to its place: another table, column, user or record cannot decrypt it', () => {
    const cipher = new AesGcmFieldCipher([a]);
    const value = cipher.encrypt('secret', place);
    for (const moved of [{ ...place, table: 'todos' }, { ...place, column: 'normalized_text' }, { ...place, userId: 'u2' }, { ...place, recordId: 'c2' }]) {
      const r = cipher.decrypt(value, moved);
      expect(r.isErr(), JSON.stringify(moved)).to.equal(true);
      expect(r._unsafeUnwrapErr().code).to.equal('INTERNAL');
      expect(String(r._unsafeUnwrapErr().cause)).to.match(/copied from another place|tampered/);
    }
  });

  it('reads every key of the ring, names an unknown key, and says which values are stale', () => {
    const old = new AesGcmFieldCipher([a]).encrypt('old', place);
    const ring = new AesGcmFieldCipher([b, a]);
    expect(ring.decrypt(old, place)._unsafeUnwrap()).to.equal('old');
    expect(ring.isStale(old)).to.equal(true);
    expect(ring.isStale(ring.encrypt('new', place))).to.equal(false);
    expect(ring.isStale('plaintext')).to.equal(true);
    expect(String(new AesGcmFieldCipher([b]).decrypt(old, place)._unsafeUnwrapErr().cause)).to.match(/key "a" is not in FIELD_ENCRYPTION_KEYS/);
  });

  it('passes plaintext through and refuses a malformed or truncated ciphertext', () => {
    const cipher = new AesGcmFieldCipher([a]);
    expect(cipher.decrypt('written before encryption', place)._unsafeUnwrap()).to.equal('written before encryption');
    const value = cipher.encrypt('secret', place);
    for (const bad of ['enc:v1:a:', 'enc:v1:a:xx:yy', value.slice(0, -10), `${value}:extra`]) expect(cipher.decrypt(bad, place).isErr(), bad).to.equal(true);
  });

  it('refuses a key ring with a key that is not 32 bytes, or none', () => {
    expect(() => new AesGcmFieldCipher([{ id: 'short', key: Buffer.alloc(16) }])).to.throw(/32 bytes/);
    expect(() => new AesGcmFieldCipher([])).to.throw(/empty/);
  });
});

describe('AesGcmFieldCipher nonces', () => {
  it('gives every value its own random nonce, across refills of its random buffer', () => {
    const cipher = new AesGcmFieldCipher([{ id: 'a', key: Buffer.alloc(32, 1) }]);
    const place = { table: 'captures', column: 'raw_content', userId: 'u1', recordId: 'c1' };
    const values = Array.from({ length: 9000 }, (_, i) => cipher.encrypt(`v${i}`, place));
    const nonces = values.map((v) => v.split(':')[3]!);
    expect(new Set(nonces).size).to.equal(9000);
    expect(nonces.every((n) => Buffer.from(n, 'base64url').length === 12 && !/^A+$/.test(n))).to.equal(true);
    values.forEach((v, i) => expect(cipher.decrypt(v, place)._unsafeUnwrap()).to.equal(`v${i}`));
  });
});
