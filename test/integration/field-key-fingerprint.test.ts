import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';

/**
 * Issue 20, item 2: two different keys under one key id make rows written under the first
 * unreadable for good. The server stores a fingerprint of each key of its ring (an HMAC of a
 * constant under the key, never the key) at first use, and refuses to start with another key
 * under an id it has seen.
 */
const key = (byte: number) => Buffer.alloc(32, byte).toString('base64');

describeEachDatabase('field-encryption key fingerprints', (ctx) => {
  const servers: TestServer[] = [];
  const start = async (keys: string) => {
    const s = await startTestServer(ctx.database.db, { FIELD_ENCRYPTION_KEYS: keys });
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it('refuses to start with another key under an id the database has seen, naming the id; the same key and new ids start', async () => {
    const first = await start(`dev:${key(1)}`);
    expect((await first.client('ann').push({ changes: { captures: { created: [{ id: 'c1', type: 'text', raw_content: 'private' }] } } })).status).to.equal(200);
    await first.close();

    let refused: unknown;
    try {
      await start(`dev:${key(2)}`);
    } catch (e) {
      refused = e;
    }
    expect(refused, 'a second key under "dev"').to.be.instanceOf(Error);
    expect((refused as Error).message).to.include('"dev"').and.to.include('FIELD_ENCRYPTION_KEYS');

    // A rotation adds a new id in front; the old key is still the one the database knows.
    const rotated = await start(`k2:${key(2)},dev:${key(1)}`);
    const pulled = await rotated.client('ann').pull({ last_pulled_at: 0, tables: 'captures' });
    expect(pulled.body.changes.captures.created[0].raw_content).to.equal('private');
    await rotated.close();
    let refusedInRing: unknown;
    try {
      await start(`k2:${key(2)},dev:${key(3)}`);
    } catch (e) {
      refusedInRing = e;
    }
    expect((refusedInRing as Error | undefined)?.message, 'a wrong key anywhere in the ring').to.include('"dev"');
    await start(`dev:${key(1)}`);
  });

  it('stores a fingerprint, never the key', async () => {
    const k = Buffer.alloc(32, 5);
    await start(`fp:${k.toString('base64')}`);
    const rows = await ctx.database.db('sync_field_keys').select('*');
    expect(rows.map((r) => r.key_id)).to.deep.equal(['fp']);
    const dump = JSON.stringify(rows);
    for (const form of [k.toString('base64'), k.toString('hex'), k.toString('base64url')]) expect(dump).not.to.include(form);
    expect(rows[0].fingerprint).to.match(/^[0-9a-f]{64}$/);
  });
});
