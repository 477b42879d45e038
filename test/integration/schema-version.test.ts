import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { expectDetails, expectError, expectHealthy, send, snapshotDb, type RawAnswer } from '../support/http-helpers';
import { startTestServer, storedRow, storedRows, type TestServer } from '../support/server';

/**
 * Schema versions (spec §4.4): the client sends `schema_version` as a query parameter or the
 * `X-Schema-Version` header on pull and push. Outside the configured range → 426
 * SCHEMA_VERSION_UNSUPPORTED with {min, max}; a push refused so writes nothing.
 */
describeEachDatabase('schema versions', (ctx) => {
  let server: TestServer;
  let defaults: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db, { SCHEMA_VERSION_MIN: '2', SCHEMA_VERSION_MAX: '4' });
    defaults = await startTestServer(ctx.database.db);
  });
  after(async () => {
    await Promise.all([server, defaults].filter(Boolean).map((s) => s.close()));
  });

  let pushes = 0;
  beforeEach(async () => {
    const seeded = await server.client('sam').push({ changes: { ideas: { created: [{ id: 'i0', text: 'seed' }] } } });
    expect(seeded.status).to.equal(200);
  });

  type Via = 'query' | 'header';

  function pull(target: TestServer, version: string, via: Via): Promise<RawAnswer> {
    const query = via === 'query' ? `&schema_version=${encodeURIComponent(version)}` : '';
    return send(`${target.url}/api/sync/pull?last_pulled_at=0${query}`, {
      headers: { authorization: `Bearer ${target.token('sam')}`, ...(via === 'header' ? { 'x-schema-version': version } : {}) },
    });
  }

  function push(target: TestServer, version: string, via: Via): Promise<RawAnswer> {
    const query = via === 'query' ? `?schema_version=${encodeURIComponent(version)}` : '';
    pushes++;
    return send(`${target.url}/api/sync/push${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.token('sam')}`, 'content-type': 'application/json', ...(via === 'header' ? { 'x-schema-version': version } : {}) },
      body: JSON.stringify({ changes: { ideas: { created: [{ id: `i${pushes}`, text: `version ${version}` }], updated: [{ id: 'i0', text: `changed by version ${version}` }] } } }),
    });
  }

  async function expectRefused(request: () => Promise<RawAnswer>, status: number, code: string): Promise<any> {
    const before = await snapshotDb(ctx.database.db);
    const r = await request();
    const details = expectError(r, status, code);
    expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
    await expectHealthy(server.url);
    return details;
  }

  for (const via of ['query', 'header'] as const) {
    const how = via === 'query' ? 'the schema_version parameter' : 'the X-Schema-Version header';

    for (const version of ['1', '5', '0', '1000']) {
      it(`pull with version ${version} in ${how}, outside 2..4 → 426 with {min: 2, max: 4}`, async () => {
        const details = await expectRefused(() => pull(server, version, via), 426, 'SCHEMA_VERSION_UNSUPPORTED');
        expect(details).to.deep.equal({ min: 2, max: 4 });
      });
      it(`push with version ${version} in ${how}, outside 2..4 → 426 with {min: 2, max: 4}, nothing written`, async () => {
        const details = await expectRefused(() => push(server, version, via), 426, 'SCHEMA_VERSION_UNSUPPORTED');
        expect(details).to.deep.equal({ min: 2, max: 4 });
      });
    }

    for (const version of ['2', '3', '4']) {
      it(`pull and push with version ${version} in ${how}, inside 2..4 → 200, the push written`, async () => {
        const p = await pull(server, version, via);
        expect(p.status, p.text).to.equal(200);
        expect(p.body.changes.ideas.created.map((r: any) => r.id)).to.include('i0');
        const w = await push(server, version, via);
        expect(w.status, w.text).to.equal(200);
        expect(await storedRow(ctx.database.db, 'ideas', 'sam', 'i0')).to.include({ text: `changed by version ${version}` });
      });
    }

    for (const version of ['abc', '1.5', '-1', '2a', '0x3', '3e0']) {
      it(`pull with the non-integer version ${JSON.stringify(version)} in ${how} → 400 naming schema_version`, async () => {
        expectDetails(await expectRefused(() => pull(server, version, via), 400, 'VALIDATION_FAILED'), [{ column: 'schema_version' }]);
      });
      it(`push with the non-integer version ${JSON.stringify(version)} in ${how} → 400 naming schema_version, nothing written`, async () => {
        expectDetails(await expectRefused(() => push(server, version, via), 400, 'VALIDATION_FAILED'), [{ column: 'schema_version' }]);
      });
    }
  }

  it('pull and push without a schema version are accepted (docs/protocol.md: REST consumers need not send one)', async () => {
    const p = await send(`${server.url}/api/sync/pull`, { headers: { authorization: `Bearer ${server.token('sam')}` } });
    expect(p.status, p.text).to.equal(200);
    const w = await server.client('sam').push({ changes: { ideas: { created: [{ id: 'plain', text: 'x' }] } } });
    expect(w.status, JSON.stringify(w.body)).to.equal(200);
    expect(await storedRows(ctx.database.db, 'ideas', 'sam')).to.have.length(2);
  });

  it('the default range is 1..1: version 2 → 426 with {min: 1, max: 1}, version 1 → 200', async () => {
    const details = await expectRefused(() => pull(defaults, '2', 'query'), 426, 'SCHEMA_VERSION_UNSUPPORTED');
    expect(details).to.deep.equal({ min: 1, max: 1 });
    expect((await pull(defaults, '1', 'header')).status).to.equal(200);
  });
});
