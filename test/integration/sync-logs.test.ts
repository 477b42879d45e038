import { expect } from 'chai';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { SyncLogEntry } from '../../src/application/ports';
import { KnexSyncLogStore } from '../../src/adapters/postgres/knex-sync-log';
import { describeEachDatabase } from '../support/databases';
import { send, type RawAnswer } from '../support/http-helpers';
import { startTestServer, type TestServer } from '../support/server';

/**
 * sync_logs (issue: observability): every authenticated pull and push leaves one row saying who,
 * what, how much, how long and how it ended. Rows are written in batches off the request path;
 * closing the server writes what is queued, so each test closes its server before reading rows.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface LogRow {
  user_id: string;
  sync_type: string;
  status: string;
  error_code: string | null;
  error_message: string | null;
  records_synced: number;
  records_by_table: Record<string, number>;
  conflicts: number;
  bytes_in: number;
  bytes_out: number;
  duration_ms: number;
  started_at: number;
  completed_at: number;
  device_id: string | null;
  app_version: string | null;
  schema_version: number | null;
  request_id: string | null;
}

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** What a pull answer carried, per table, counted from the answer itself. */
function pulledPerTable(body: any): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [table, ch] of Object.entries<any>(body.changes)) {
    const n = ch.created.length + ch.updated.length + ch.deleted.length;
    if (n > 0) out[table] = n;
  }
  return out;
}

describeEachDatabase('sync_logs rows', (ctx) => {
  let server: TestServer | undefined;
  let t0: number;
  beforeEach(async () => {
    t0 = Date.now();
    server = await startTestServer(ctx.database.db);
  });
  afterEach(async () => {
    await server?.close();
  });

  /** Closes the server (which writes the queued entries) and returns every row, oldest first. */
  async function closeAndReadLogs(): Promise<LogRow[]> {
    await server!.close();
    const rows = await ctx.database.db('sync_logs').select('*').orderBy('id');
    return rows.map((r: any) => ({
      ...r,
      records_by_table: typeof r.records_by_table === 'string' ? JSON.parse(r.records_by_table) : r.records_by_table,
      bytes_in: Number(r.bytes_in),
      bytes_out: Number(r.bytes_out),
      started_at: Number(r.started_at),
      completed_at: Number(r.completed_at),
      schema_version: r.schema_version === null ? null : Number(r.schema_version),
    }));
  }

  function byRequest(rows: LogRow[], requestId: string): LogRow {
    const found = rows.filter((r) => r.request_id === requestId);
    expect(found, `rows with request id ${requestId} in ${JSON.stringify(rows)}`).to.have.length(1);
    return found[0]!;
  }

  function expectTimes(row: LogRow): void {
    expect(row.duration_ms).to.be.a('number').at.least(0);
    expect(row.started_at).to.be.at.least(t0);
    expect(row.completed_at).to.be.at.least(row.started_at).and.at.most(Date.now());
    expect(row.duration_ms).to.be.at.most(row.completed_at - row.started_at + 1);
  }

  const auth = (user: string) => ({ authorization: `Bearer ${server!.token(user)}` });

  function push(user: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<RawAnswer> {
    return send(`${server!.url}/api/sync/push`, { method: 'POST', headers: { ...auth(user), 'content-type': 'application/json', ...headers }, body });
  }

  function pull(user: string, query: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
    return send(`${server!.url}/api/sync/pull?${query}`, { headers: { ...auth(user), ...headers } });
  }

  it('a successful push with a conflict and a successful pull each leave one row with what happened', async () => {
    const phone = server!.client('lena', 'phone');
    expect((await phone.push({ changes: { ideas: { created: [{ id: 'i1', text: 'draft' }] } } })).status).to.equal(200);
    const cursor = (await phone.pull({ last_pulled_at: 0 })).body.timestamp;
    expect((await server!.client('lena', 'laptop').push({ last_pulled_at: cursor, changes: { ideas: { updated: [{ id: 'i1', text: 'laptop edit' }] } } })).status).to.equal(200);

    const text = JSON.stringify({
      last_pulled_at: cursor,
      changes: {
        ideas: { created: [{ id: 'i2', text: 'new' }], updated: [{ id: 'i1', text: 'phone edit' }], deleted: ['i9'] },
        todos: { created: [{ id: 't1', description: 'call the bank' }] },
      },
    });
    const pushed = await push('lena', text, { 'x-request-id': 'push-ok-1', 'x-device-id': 'phone', 'x-app-version': '2.3.1 (build 77)', 'x-schema-version': '1' });
    expect(pushed.status, pushed.text).to.equal(200);
    expect(pushed.headers.get('x-request-id')).to.equal('push-ok-1');
    expect(pushed.body.conflicts).to.have.length(1);

    const pulled = await pull('lena', 'last_pulled_at=0&schema_version=1', { 'x-request-id': 'pull-ok-1', 'x-device-id': 'tablet', 'x-app-version': '2.3.0', 'accept-encoding': 'identity' });
    expect(pulled.status, pulled.text).to.equal(200);
    expect(pulled.headers.get('x-request-id')).to.equal('pull-ok-1');
    const pulledTables = pulledPerTable(pulled.body);
    expect(pulledTables).to.deep.equal({ todos: 1, ideas: 2 });

    const rows = await closeAndReadLogs();
    // The seed push, the seed pull, the laptop's push, then the two under test.
    expect(rows.map((r) => `${r.sync_type}:${r.status}`)).to.deep.equal(['push:success', 'pull:success', 'push:success', 'push:success', 'pull:success']);

    const p = byRequest(rows, 'push-ok-1');
    expect(p).to.include({
      user_id: 'lena',
      sync_type: 'push',
      status: 'success',
      error_code: null,
      error_message: null,
      records_synced: 4,
      conflicts: 1,
      bytes_in: bytes(text),
      bytes_out: bytes(pushed.text),
      device_id: 'phone',
      app_version: '2.3.1 (build 77)',
      schema_version: 1,
    });
    expect(p.records_by_table).to.deep.equal({ ideas: 3, todos: 1 });
    expectTimes(p);

    const q = byRequest(rows, 'pull-ok-1');
    expect(q).to.include({
      user_id: 'lena',
      sync_type: 'pull',
      status: 'success',
      error_code: null,
      error_message: null,
      records_synced: 3,
      conflicts: 0,
      bytes_in: 0,
      bytes_out: bytes(pulled.text),
      device_id: 'tablet',
      app_version: '2.3.0',
      schema_version: 1,
    });
    expect(q.records_by_table).to.deep.equal(pulledTables);
    expectTimes(q);
  });

  it('a gzip-compressed push counts the bytes as sent, compressed', async () => {
    const text = JSON.stringify({ changes: { ideas: { created: Array.from({ length: 40 }, (_, i) => ({ id: `z${i}`, text: `compressible idea number ${i}` })) } } });
    const gz = gzipSync(Buffer.from(text));
    expect(gz.length).to.be.below(bytes(text));
    const pushed = await push('zed', gz, { 'content-encoding': 'gzip', 'x-request-id': 'gz-1' });
    expect(pushed.status, pushed.text).to.equal(200);

    const row = byRequest(await closeAndReadLogs(), 'gz-1');
    expect(row).to.include({ user_id: 'zed', status: 'success', bytes_in: gz.length, bytes_out: bytes(pushed.text), records_synced: 40, device_id: null, app_version: null, schema_version: null });
    expect(row.records_by_table).to.deep.equal({ ideas: 40 });
  });

  it('a refused push (400) and a refused pull (426) each leave a failure row with the error the client got', async () => {
    const invalid = JSON.stringify({ changes: { ideas: { created: [{ id: 'i1', text: 'ok', mood: 'sunny' }] } } });
    const refused = await push('omar', invalid, { 'x-request-id': 'push-bad-1', 'x-device-id': 'phone-7', 'x-app-version': '1.0.0' });
    expect(refused.status, refused.text).to.equal(400);
    expect(refused.headers.get('x-request-id')).to.equal('push-bad-1');

    const malformed = '{"changes": {';
    const unparsable = await push('omar', malformed, { 'x-request-id': 'push-bad-2' });
    expect(unparsable.status, unparsable.text).to.equal(400);

    const old = await pull('omar', 'last_pulled_at=0&schema_version=2', { 'x-request-id': 'pull-bad-1', 'x-device-id': 'phone-7', 'x-app-version': '1.0.0' });
    expect(old.status, old.text).to.equal(426);

    const rows = await closeAndReadLogs();
    expect(rows).to.have.length(3);

    const p = byRequest(rows, 'push-bad-1');
    expect(p).to.include({
      user_id: 'omar',
      sync_type: 'push',
      status: 'failure',
      error_code: 'VALIDATION_FAILED',
      error_message: refused.body.error.message,
      records_synced: 0,
      conflicts: 0,
      bytes_in: bytes(invalid),
      bytes_out: bytes(refused.text),
      device_id: 'phone-7',
      app_version: '1.0.0',
      schema_version: null,
    });
    expect(p.records_by_table).to.deep.equal({});
    expectTimes(p);

    const m = byRequest(rows, 'push-bad-2');
    expect(m).to.include({ status: 'failure', error_code: 'VALIDATION_FAILED', error_message: unparsable.body.error.message, bytes_in: bytes(malformed), bytes_out: bytes(unparsable.text) });

    const q = byRequest(rows, 'pull-bad-1');
    expect(q).to.include({
      user_id: 'omar',
      sync_type: 'pull',
      status: 'failure',
      error_code: 'SCHEMA_VERSION_UNSUPPORTED',
      error_message: old.body.error.message,
      records_synced: 0,
      conflicts: 0,
      bytes_in: 0,
      bytes_out: bytes(old.text),
      device_id: 'phone-7',
      app_version: '1.0.0',
      schema_version: 2,
    });
    expect(q.records_by_table).to.deep.equal({});
    expectTimes(q);
  });

  it('uses a generated request id, echoed in X-Request-Id, when the client sends none or an unusable one', async () => {
    const none = await pull('ivy', 'last_pulled_at=0');
    const bad = await pull('ivy', 'last_pulled_at=0', { 'x-request-id': 'has spaces and {braces}' });
    expect(none.status).to.equal(200);
    expect(bad.status).to.equal(200);
    const ids = [none.headers.get('x-request-id'), bad.headers.get('x-request-id')];
    for (const id of ids) expect(id).to.match(UUID);
    expect(ids[0]).not.to.equal(ids[1]);

    const rows = await closeAndReadLogs();
    expect(rows.map((r) => r.request_id)).to.deep.equal(ids);
  });

  it('does not log requests refused before a user is known (401), nor admin reads', async () => {
    expect((await send(`${server!.url}/api/sync/pull?last_pulled_at=0`)).status).to.equal(401);
    expect((await send(`${server!.url}/api/sync/pull?last_pulled_at=0`, { headers: { authorization: 'Bearer not.a.jwt' } })).status).to.equal(401);
    expect((await send(`${server!.url}/api/sync/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"changes":{}}' })).status).to.equal(401);
    expect((await send(`${server!.url}/api/admin/sync/stats`, { headers: auth('ivy') })).status).to.equal(403);
    const ok = await pull('ivy', 'last_pulled_at=0', { 'x-request-id': 'the-only-one' });
    expect(ok.status).to.equal(200);

    const rows = await closeAndReadLogs();
    expect(rows.map((r) => [r.request_id, r.user_id])).to.deep.equal([['the-only-one', 'ivy']]);
  });

  /** Sends raw bytes as one HTTP request (so the head can lie) and returns the status line's code. */
  function rawRequest(text: string): Promise<number> {
    const url = new URL(server!.url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => socket.end(text));
      let got = '';
      socket.on('data', (c) => (got += c.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0)));
    });
  }

  // Issue 20, item 5: the declared Content-Length was logged as bytes_in; 10^19 overflowed the
  // int8 column and the whole batch (every user's rows, and their failure streaks) was lost.
  it('a forged Content-Length (10000000000000000000) logs the bytes actually read, and the other rows of the batch are kept', async () => {
    const body = '{"changes":{}}';
    const status = await rawRequest(
      `POST /api/sync/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server!.token('forger')}\r\nContent-Type: application/json\r\nX-Request-Id: forged-length\r\nContent-Length: 10000000000000000000\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(status).to.equal(413);
    const fine = await pull('neighbour', 'last_pulled_at=0', { 'x-request-id': 'neighbour-pull' });
    expect(fine.status).to.equal(200);
    const failed = await pull('neighbour', 'last_pulled_at=0&limit=0', { 'x-request-id': 'neighbour-fail' });
    expect(failed.status).to.equal(400);

    const rows = await closeAndReadLogs();
    expect(rows.map((r) => r.request_id)).to.deep.equal(['forged-length', 'neighbour-pull', 'neighbour-fail']);
    const forged = byRequest(rows, 'forged-length');
    expect(forged).to.include({ user_id: 'forger', status: 'failure', error_code: 'PAYLOAD_TOO_LARGE' });
    expect(forged.bytes_in, 'bytes actually read').to.be.at.most(bytes(body));
    const streaks = await ctx.database.db('sync_failure_streaks').orderBy('user_id').select('user_id', 'streak');
    expect(streaks.map((s: any) => [s.user_id, Number(s.streak)])).to.deep.equal([['forger', 1], ['neighbour', 1]]);
  });

  it('one entry the table refuses does not sink the others of its batch: they are written and every streak is counted', async () => {
    const entry = (userId: string, requestId: string, bytesIn: number): SyncLogEntry => ({
      userId,
      syncType: 'push',
      startedAt: t0,
      completedAt: t0 + 1,
      durationMs: 1,
      recordsSynced: 0,
      recordsByTable: {},
      conflicts: 0,
      bytesIn,
      bytesOut: 10,
      status: 'failure',
      errorCode: 'INTERNAL',
      errorMessage: 'failed',
      deviceId: null,
      appVersion: null,
      schemaVersion: null,
      requestId,
    });
    const store = new KnexSyncLogStore(ctx.database.db);
    // 1e19 does not fit the int8 column: PostgreSQL refuses that row.
    const written = await store.append([entry('ann', 'a-1', 10), entry('bad', 'b-1', 1e19), entry('cyd', 'c-1', 10), entry('ann', 'a-2', 10)]);
    expect(written.isOk(), written.isErr() ? written.error.message : '').to.equal(true);
    const outcome = written._unsafeUnwrap();
    expect(outcome.rejected.map((r) => r.requestId)).to.deep.equal(['b-1']);
    expect(outcome.streaks.map((c) => [c.userId, c.streak])).to.deep.equal([['ann', 1], ['ann', 2], ['bad', 1], ['cyd', 1]]);
    expect(await ctx.database.db('sync_logs').orderBy('id').pluck('request_id')).to.deep.equal(['a-1', 'c-1', 'a-2']);
  });

  it('keeps the batch when a client sends a schema version too large for the column', async () => {
    // A 426 for a version no server will ever accept is still a sync attempt worth keeping, and
    // one odd header must not cost the other users' rows written in the same batch.
    const odd = await pull('mia', 'last_pulled_at=0', { 'x-schema-version': '3000000000', 'x-request-id': 'huge-version' });
    expect(odd.status, odd.text).to.equal(426);
    const fine = await pull('noor', 'last_pulled_at=0', { 'x-request-id': 'neighbour' });
    expect(fine.status).to.equal(200);

    const rows = await closeAndReadLogs();
    expect(rows.map((r) => r.request_id)).to.deep.equal(['huge-version', 'neighbour']);
    expect(byRequest(rows, 'huge-version')).to.include({ status: 'failure', error_code: 'SCHEMA_VERSION_UNSUPPORTED' });
  });
});
