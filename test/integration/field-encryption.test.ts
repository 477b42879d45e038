import { expect } from 'chai';
import { AesGcmFieldCipher } from '../../src/adapters/crypto/aes-gcm-field-cipher';
import { reencryptAll, reencryptBatch } from '../../src/adapters/postgres/knex-reencryptor';
import { tableSpec } from '../../src/domain';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';

/**
 * Private notes at rest (captures.raw_content, captures.normalized_text): no plaintext in the
 * database, a clear error for a tampered or moved ciphertext, and key rotation end to end.
 */
const key = (byte: number) => Buffer.alloc(32, byte).toString('base64');
const KEY_A = `a:${key(1)}`;
const KEY_B = `b:${key(2)}`;

describeEachDatabase('field encryption at rest', (ctx) => {
  const servers: TestServer[] = [];
  const start = async (keys: string) => {
    const s = await startTestServer(ctx.database.db, { FIELD_ENCRYPTION_KEYS: keys });
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  const raw = (user: string) => ctx.database.db('captures').where({ user_id: user }).orderBy('id');
  const pullCaptures = async (s: TestServer, user: string) => (await s.client(user).pull({ last_pulled_at: 0, tables: 'captures' })).body;

  it('stores no plaintext of the sensitive columns, and the API gives it back', async () => {
    const s = await start(KEY_A);
    const secret = 'my diagnosis: nothing to worry about';
    await s.client('ann').push({ changes: { captures: { created: [{ id: 'c1', type: 'text', raw_content: secret, normalized_text: 'diagnosis' }, { id: 'c2', type: 'text', raw_content: secret }] } } });
    const rows = await raw('ann');
    for (const r of rows) {
      expect(r.raw_content).to.match(/^enc:v1:a:/).and.not.include('diagnosis');
      expect(r.encrypted).to.equal(true);
    }
    expect(rows[0].normalized_text).to.match(/^enc:v1:a:/);
    expect(rows[0].raw_content, 'a fresh nonce per value').to.not.equal(rows[1].raw_content);
    const dump = JSON.stringify(await ctx.database.db('captures').select('*'));
    expect(dump).to.not.include('diagnosis');
    const pulled = await pullCaptures(s, 'ann');
    expect(pulled.changes.captures.created.map((c: any) => [c.id, c.raw_content, c.normalized_text])).to.deep.equal([
      ['c1', secret, 'diagnosis'],
      ['c2', secret, null],
    ]);
  });

  it('decrypts the captures a page of a pull of all tables sends, not those read past its cut', async () => {
    const s = await start(KEY_A);
    // Captures and ideas interleaved in stamp order, so a page cuts the captures' read short.
    for (let i = 0; i < 4; i++) {
      await s.client('cy').push({ changes: { captures: { created: [{ id: `c${i}`, type: 'text', raw_content: `note ${i}` }] }, ideas: { created: [{ id: `i${i}`, text: `idea ${i}` }] } } });
    }
    // c3 tampered (its stamp kept): only the page that would send it names it as undecryptable.
    await ctx.database.db.transaction(async (trx) => {
      await trx.raw("SELECT set_config('sync.skip_stamp', 'on', true)");
      const row = await trx('captures').where({ user_id: 'cy', id: 'c3' }).first('raw_content');
      await trx('captures').where({ user_id: 'cy', id: 'c3' }).update({ raw_content: row.raw_content.slice(0, -3) + (row.raw_content.endsWith('AAA') ? 'BBB' : 'AAA') });
    });
    const first = await s.client('cy').pull({ last_pulled_at: 0, limit: 3 });
    expect(first.status).to.equal(200);
    expect(first.body.has_more).to.equal(true);
    expect(first.body.changes.captures.created.map((c: any) => [c.id, c.raw_content])).to.deep.equal([
      ['c0', 'note 0'],
      ['c1', 'note 1'],
    ]);
    const second = await s.client('cy').pull({ last_pulled_at: first.body.timestamp, limit: 3 });
    expect(second.body.changes.captures.created.map((c: any) => [c.id, c.raw_content])).to.deep.equal([['c2', 'note 2']]);
    const third = await s.client('cy').pull({ last_pulled_at: second.body.timestamp, limit: 3 });
    expect(third.status).to.equal(200);
    expect(third.body.changes.captures.created).to.deep.equal([]);
    expect(third.body.undecryptable).to.deep.equal([{ table: 'captures', id: 'c3' }]);
    expect(first.body.undecryptable, 'pages that do not send it do not name it').to.equal(undefined);
  });

  it('with DECRYPT_THREADS=1, large pages (shared with a decrypt thread once it has started) come back with the same values and errors', async function () {
    this.timeout(60_000);
    const s = await startTestServer(ctx.database.db, { FIELD_ENCRYPTION_KEYS: KEY_A, DECRYPT_THREADS: '1' });
    servers.push(s);
    const n = 2500;
    const created = Array.from({ length: n }, (_, i) => ({ id: `c${String(i).padStart(4, '0')}`, type: 'text', raw_content: `note ${i} é` }));
    for (let i = 0; i < n; i += 1000) await s.client('big').push({ changes: { captures: { created: created.slice(i, i + 1000) } } });
    // The first large page starts the thread; the ones after it share the work with it.
    for (let round = 0; round < 3; round++) {
      const page = (await pullCaptures(s, 'big')).changes.captures.created;
      expect(page.map((c: any) => [c.id, c.raw_content]), `round ${round}`).to.deep.equal(created.map((c) => [c.id, c.raw_content]));
      await new Promise((r) => setTimeout(r, 200));
    }
    const [row] = await raw('big').where({ id: 'c2400' });
    await ctx.database.db('captures').where({ user_id: 'big', id: 'c2400' }).update({ raw_content: row.raw_content.slice(0, -3) + (row.raw_content.endsWith('AAA') ? 'BBB' : 'AAA') });
    // A failure inside a threaded decryptAll: the value at fault is found, the others are sent.
    const pull = await s.client('big').pull({ last_pulled_at: 0, tables: 'captures' });
    expect(pull.status).to.equal(200);
    expect(pull.body.undecryptable).to.deep.equal([{ table: 'captures', id: 'c2400' }]);
    expect(pull.body.changes.captures.created.map((c: any) => [c.id, c.raw_content])).to.deep.equal(created.filter((c) => c.id !== 'c2400').map((c) => [c.id, c.raw_content]));
  });

  it('leaves a tampered ciphertext out (named under undecryptable), never garbage, and other users are unaffected', async () => {
    const s = await start(KEY_A);
    await s.client('tam').push({ changes: { captures: { created: [{ id: 'c1', type: 'text', raw_content: 'original' }] } } });
    await s.client('other').push({ changes: { captures: { created: [{ id: 'c1', type: 'text', raw_content: 'fine' }] } } });
    const [row] = await raw('tam');
    const flipped = row.raw_content.slice(0, -3) + (row.raw_content.endsWith('AAA') ? 'BBB' : 'AAA');
    await ctx.database.db('captures').where({ user_id: 'tam', id: 'c1' }).update({ raw_content: flipped });
    const pull = await s.client('tam').pull({ last_pulled_at: 0 });
    expect(pull.status).to.equal(200);
    expect(pull.body.changes.captures.created).to.deep.equal([]);
    expect(pull.body.undecryptable).to.deep.equal([{ table: 'captures', id: 'c1' }]);
    expect(JSON.stringify(pull.body)).not.to.include(flipped);
    expect((await pullCaptures(s, 'other')).changes.captures.created[0].raw_content).to.equal('fine');
  });

  it('does not send a ciphertext moved to another record or another user (named under undecryptable)', async () => {
    const s = await start(KEY_A);
    await s.client('mia').push({ changes: { captures: { created: [{ id: 'secret', type: 'text', raw_content: 'mia only' }, { id: 'plain', type: 'text', raw_content: 'x' }] } } });
    await s.client('max').push({ changes: { captures: { created: [{ id: 'secret', type: 'text', raw_content: 'max' }] } } });
    const stolen = (await raw('mia')).find((r: any) => r.id === 'secret').raw_content;
    await ctx.database.db('captures').where({ user_id: 'mia', id: 'plain' }).update({ raw_content: stolen });
    const mia = await s.client('mia').pull({ last_pulled_at: 0 });
    expect(mia.body.undecryptable, 'moved to another record').to.deep.equal([{ table: 'captures', id: 'plain' }]);
    expect(mia.body.changes.captures.created.map((c: any) => c.id)).to.deep.equal(['secret']);
    await ctx.database.db('captures').where({ user_id: 'max', id: 'secret' }).update({ raw_content: stolen });
    const max = await s.client('max').pull({ last_pulled_at: 0 });
    expect(max.body.undecryptable, 'moved to another user, same id').to.deep.equal([{ table: 'captures', id: 'secret' }]);
    expect(max.body.changes.captures.created).to.deep.equal([]);
  });

  it('rotates keys end to end: old values read with the old key in the ring, re-encrypted in resumable batches without new stamps, then the old key can go', async () => {
    const before = await start(KEY_A);
    const notes = Array.from({ length: 5 }, (_, i) => ({ id: `c${i}`, type: 'text', raw_content: `note ${i}`, normalized_text: i % 2 ? `text ${i}` : null }));
    await before.client('rot').push({ changes: { captures: { created: notes } } });
    // A row another process wrote before encryption existed: plaintext, encrypted = false.
    await ctx.database.db('captures').insert({ user_id: 'rot', id: 'legacy', type: 'text', raw_content: 'written in plaintext', created_at: 1 });
    const stampsBefore = (await raw('rot')).map((r: any) => [r.id, String(r.last_modified_at)]);

    const during = await start(`${KEY_B},${KEY_A}`);
    expect((await pullCaptures(during, 'rot')).changes.captures.created.map((c: any) => c.raw_content)).to.include.members(['note 0', 'note 4', 'written in plaintext']);

    const cipher = new AesGcmFieldCipher([
      { id: 'b', key: Buffer.alloc(32, 2) },
      { id: 'a', key: Buffer.alloc(32, 1) },
    ]);
    const captures = tableSpec('captures')!;
    expect(await reencryptBatch(ctx.database.db, cipher, captures, 2), 'one bounded batch').to.equal(2);
    expect((await raw('rot')).filter((r: any) => r.raw_content.startsWith('enc:v1:b:'))).to.have.length(2);
    // Stopped here and started again: it carries on where it was.
    expect(await reencryptAll(ctx.database.db, cipher, 2)).to.equal(4);
    expect(await reencryptBatch(ctx.database.db, cipher, captures, 2)).to.equal(0);

    const rows = await raw('rot');
    for (const r of rows) {
      expect(r.raw_content).to.match(/^enc:v1:b:/);
      if (r.normalized_text !== null) expect(r.normalized_text).to.match(/^enc:v1:b:/);
      expect(r.encrypted).to.equal(true);
    }
    expect(rows.map((r: any) => [r.id, String(r.last_modified_at)]), 'no new stamps: devices download nothing again').to.deep.equal(stampsBefore);

    const after = await start(KEY_B);
    const pulled = await pullCaptures(after, 'rot');
    expect(pulled.changes.captures.created.map((c: any) => [c.id, c.raw_content]).sort()).to.deep.equal(
      [...notes.map((n) => [n.id, n.raw_content]), ['legacy', 'written in plaintext']].sort(),
    );
    expect(pulled.changes.captures.created.find((c: any) => c.id === 'c1').normalized_text).to.equal('text 1');
  });
});

/** Issue 20, item 10: plaintext in a row the server marked encrypted is not trusted as clear. */
describeEachDatabase('field encryption: plaintext in a row marked encrypted', (ctx) => {
  it('npm run reencrypt refuses to encrypt it (it would launder it), naming the row; with encrypted = false it encrypts it', async () => {
    const s = await startTestServer(ctx.database.db, { FIELD_ENCRYPTION_KEYS: KEY_A });
    try {
      await s.client('lau').push({ changes: { captures: { created: [{ id: 'c1', type: 'text', raw_content: 'sealed' }] } } });
      await ctx.database.db('captures').where({ user_id: 'lau', id: 'c1' }).update({ raw_content: 'slipped in' });
      const cipher = new AesGcmFieldCipher([{ id: 'a', key: Buffer.alloc(32, 1) }]);
      let refused: unknown;
      await reencryptAll(ctx.database.db, cipher, 10).catch((e: unknown) => (refused = e));
      expect(String(refused)).to.match(/captures\.raw_content of record c1 \(user lau\) is marked encrypted but holds no ciphertext/);
      expect((await ctx.database.db('captures').where({ user_id: 'lau', id: 'c1' }).first()).raw_content).to.equal('slipped in');
      await ctx.database.db('captures').where({ user_id: 'lau', id: 'c1' }).update({ encrypted: false });
      expect(await reencryptAll(ctx.database.db, cipher, 10)).to.equal(1);
      const pulled = await s.client('lau').pull({ last_pulled_at: 0 });
      expect(pulled.body.changes.captures.created.map((c: any) => c.raw_content)).to.deep.equal(['slipped in']);
    } finally {
      await s.close();
    }
  });
});
