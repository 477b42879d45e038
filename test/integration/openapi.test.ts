import { connect, createServer, type Socket } from 'node:net';
import { expect } from 'chai';
import type { Knex } from 'knex';
import type Koa from 'koa';
import { pino } from 'pino';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { signToken } from '../../src/adapters/crypto/jwt-token-issuer';
import { TABLES, tableSpec, type TableSpec, type WireRecord } from '../../src/domain/schema';
import { loadConfig } from '../../src/main/config';
import { buildContainer, disposeContainer, ROOT } from '../../src/main/container';
import { describeEachDatabase } from '../support/databases';
import { send, type RawAnswer } from '../support/http-helpers';
import { loadOpenApi, OpenApiContract } from '../support/openapi';
import { startTestServer, TEST_SECRET, type TestServer } from '../support/server';

/**
 * The running server against docs/openapi.yaml: every route, success and error, answers with a
 * status the document lists for it, and a body and headers that validate against the schema it
 * documents for that status. Requests the tests send are checked against the document too: the
 * valid ones fit it, and the invalid ones it can describe are refused by it as by the server.
 */

const PULL = '/api/sync/pull';
const PUSH = '/api/sync/push';
const STATS = '/api/admin/sync/stats';
const SERIES = '/api/admin/sync/series';
const RUNTIME = '/api/admin/runtime';
const MAX_RECORDS = 20;
const MAX_BODY = 65_536;

interface Call {
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  readonly rawBody?: string;
  readonly user?: string;
  readonly admin?: boolean;
  /** null: no Authorization header; a string: this token. */
  readonly token?: string | null;
}

/** A record of `table` with every column set (n varies the values), or only the required ones. */
function sample(table: TableSpec, id: string, n: number, only: 'all' | 'required' = 'all'): WireRecord {
  const r: WireRecord = { id, created_at: 1_700_000_000_000 + n };
  for (const [column, spec] of Object.entries(table.columns)) {
    if (only === 'required' && (spec.nullable || spec.default !== undefined)) continue;
    if (spec.enum) r[column] = spec.enum[n % spec.enum.length]!;
    else if (spec.type === 'integer') r[column] = 1000 * n;
    else if (spec.type === 'boolean') r[column] = n % 2 === 1;
    else if (spec.type === 'json_array') r[column] = JSON.stringify([`tag ${n}`]);
    else r[column] = `${column} ${n}`;
  }
  return r;
}

const spec = (name: string): TableSpec => tableSpec(name) ?? expect.fail(`no table ${name}`);
const everyTable = (f: (t: TableSpec) => unknown) => Object.fromEntries(TABLES.map((t) => [t.name, f(t)]));

describeEachDatabase('OpenAPI contract: real answers validate against docs/openapi.yaml', (ctx, name) => {
  const contract = new OpenApiContract();
  let server: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db, { SYNC_MAX_PUSH_RECORDS: String(MAX_RECORDS), SYNC_MAX_BODY_BYTES: String(MAX_BODY) });
  });
  after(() => server?.close());

  /** Sends a request as a REST consumer would, and checks the answer against the document. */
  async function call(method: 'GET' | 'POST', path: string, c: Call = {}, base = server): Promise<RawAnswer> {
    const token = c.token === undefined ? base.token(c.user ?? 'alice', { admin: c.admin ?? false }) : c.token;
    const headers: Record<string, string> = { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...c.headers };
    const body = c.rawBody ?? (c.body === undefined ? undefined : JSON.stringify(c.body));
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const answer = await send(`${base.url}${path}${c.query ? `?${new URLSearchParams(c.query)}` : ''}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    expect(contract.responseProblems(method, path, answer), `${method} ${path} → ${answer.status} ${answer.text.slice(0, 400)}`).to.deep.equal([]);
    return answer;
  }

  /** The request fits the document (valid), or the document refuses it as the server did. */
  function expectRequest(method: string, path: string, c: Call, valid: boolean): void {
    const problems = contract.requestProblems(method, path, { ...(c.query ? { query: c.query } : {}), ...(c.headers ? { headers: c.headers } : {}), ...(c.body !== undefined ? { body: c.body } : {}) });
    if (valid) expect(problems, JSON.stringify(c)).to.deep.equal([]);
    else expect(problems, `the document should refuse ${JSON.stringify(c)} too`).not.to.deep.equal([]);
  }

  async function push(c: Call, status = 200): Promise<RawAnswer> {
    const answer = await call('POST', PUSH, c);
    expect(answer.status, answer.text).to.equal(status);
    return answer;
  }

  /** Two devices of `user` edit the same rows: a push with every kind of conflict. Returns its request and answer. */
  async function pushConflicts(user: string): Promise<{ request: Call; answer: RawAnswer }> {
    const [captures, todos, ideas, projects] = ['captures', 'todos', 'ideas', 'projects'].map(spec) as [TableSpec, TableSpec, TableSpec, TableSpec];
    const phone = { 'x-device-id': 'phone' };
    const first = await push({ user, headers: phone, body: { last_pulled_at: null, changes: { captures: { created: [sample(captures, 'c1', 1)] }, todos: { created: [sample(todos, 't1', 1)] }, ideas: { created: [sample(ideas, 'i1', 1)] }, projects: { created: [sample(projects, 'p1', 1)] } } } });
    const pulledAt = first.body.timestamp as number;
    await push({ user, headers: { 'x-device-id': 'tablet' }, body: { last_pulled_at: pulledAt, changes: { captures: { updated: [{ id: 'c1', state: 'ready' }] }, todos: { updated: [{ id: 't1', priority: 'low' }] }, ideas: { deleted: ['i1'] }, projects: { updated: [{ id: 'p1', name: 'renamed' }] } } } });
    const request: Call = {
      user,
      headers: { ...phone, 'x-schema-version': '1' },
      body: {
        last_pulled_at: pulledAt,
        push_id: `conflicts-${user}`,
        changes: {
          captures: { updated: [{ id: 'c1', state: 'failed', tags: '["late"]', _status: 'updated', _changed: 'state,tags', last_modified_at: pulledAt }] },
          todos: { updated: [{ id: 't1', state: 'done', priority: 'high' }] },
          ideas: { updated: [{ id: 'i1', text: 'still here?' }] },
          projects: { deleted: ['p1'] },
        },
      },
    };
    expectRequest('POST', PUSH, request, true);
    return { request, answer: await push(request) };
  }

  it('GET /healthz and /readyz without a token; /metrics (text/plain) only with METRICS_TOKEN, else 404', async () => {
    const probe: Call = { token: null, headers: { 'x-request-id': 'probe.1:a-b' } };
    expectRequest('GET', '/healthz', probe, true);
    const health = await call('GET', '/healthz', probe);
    expect([health.status, health.headers.get('x-request-id')]).to.deep.equal([200, 'probe.1:a-b']);
    expect((await call('GET', '/readyz', probe)).status).to.equal(200);
    expect((await call('GET', '/metrics', { token: null })).status, 'not on the public port by default').to.equal(404);
    const metricsToken = 'metrics-token-0123456789abcdef';
    const withToken = await startTestServer(ctx.database.db, { METRICS_PORT: '', METRICS_TOKEN: metricsToken });
    try {
      expect((await call('GET', '/metrics', { token: null }, withToken)).status).to.equal(401);
      const metrics = await call('GET', '/metrics', { token: metricsToken }, withToken);
      expect(metrics.status).to.equal(200);
      expect(metrics.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    } finally {
      await withToken.close();
    }
  });

  it('answers a path or method the document does not have with its NotFound response', async () => {
    const token = server.token('alice');
    for (const [method, path] of [['GET', '/nope'], ['GET', '/api/nope'], ['POST', PULL], ['DELETE', PUSH], ['GET', '/api/sync']] as const) {
      expect(contract.operations(), 'not a documented operation').not.to.include(`${method} ${path}`);
      const answer = await send(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
      expect(answer.status, `${method} ${path}`).to.equal(404);
      expect(contract.answerProblems('/components/responses/NotFound', answer), `${method} ${path}`).to.deep.equal([]);
    }
  });

  it('pull: a first sync and an incremental one with rows in every table, a cut page and a migration', async () => {
    const seed: Call = { body: { last_pulled_at: null, push_id: 'seed', changes: everyTable((t) => ({ created: [sample(t, 'a', 1), sample(t, 'm', 2, 'required')], updated: [], deleted: [] })) } };
    expectRequest('POST', PUSH, seed, true);
    await push(seed);

    const firstQuery: Call = { query: { last_pulled_at: 'null', schema_version: '1' }, headers: { 'x-device-id': 'phone-1', 'x-app-version': '1.2.3 (45)', 'x-schema-version': '1', 'x-request-id': 'first-sync' } };
    expectRequest('GET', PULL, firstQuery, true);
    const first = await call('GET', PULL, firstQuery);
    expect(first.status).to.equal(200);
    for (const t of TABLES) expect(first.body.changes[t.name].created.map((r: WireRecord) => r['id']).sort(), t.name).to.deep.equal(['a', 'm']);

    await push({ body: { last_pulled_at: first.body.timestamp, changes: everyTable((t) => ({ created: [sample(t, 'c', 3)], updated: [sample(t, 'a', 4)], deleted: ['m'] })) } });
    const incremental = await call('GET', PULL, { query: { last_pulled_at: String(first.body.timestamp) }, headers: { 'x-device-id': 'phone-1' } });
    expect(incremental.status).to.equal(200);
    for (const t of TABLES) {
      const c = incremental.body.changes[t.name];
      expect([c.created.map((r: WireRecord) => r['id']), c.updated.map((r: WireRecord) => r['id']), c.deleted], t.name).to.deep.equal([['c'], ['a'], ['m']]);
    }

    const cut: Call = { query: { last_pulled_at: '0', tables: 'captures,todos', limit: '1' } };
    expectRequest('GET', PULL, cut, true);
    const page = await call('GET', PULL, cut);
    expect([page.status, page.body.has_more, Object.keys(page.body.changes)]).to.deep.equal([200, true, ['captures', 'todos']]);

    const migration: Call = { query: { last_pulled_at: String(incremental.body.timestamp), migration: JSON.stringify({ from: 1, tables: ['ideas'], columns: [{ table: 'todos', columns: ['priority'] }] }) } };
    expectRequest('GET', PULL, migration, true);
    const migrated = await call('GET', PULL, migration);
    expect([migrated.status, migrated.body.changes.ideas.created.length]).to.deep.equal([200, 2]);
  });

  it('pull: 400 for a bad parameter or header, 401 without a valid token, 426 for an unsupported schema version', async () => {
    const badQueries: Array<Record<string, string>> = [{ last_pulled_at: 'yesterday' }, { limit: '0' }, { tables: 'captures,nope' }, { migration: '{"tables": "ideas"}' }, { schema_version: 'one' }];
    for (const bad of badQueries) {
      expectRequest('GET', PULL, { query: bad }, false);
      const answer = await call('GET', PULL, { query: bad });
      expect([answer.status, answer.body.error.code], JSON.stringify(bad)).to.deep.equal([400, 'VALIDATION_FAILED']);
      expect(answer.body.error.details, JSON.stringify(bad)).to.be.an('array').that.is.not.empty;
    }
    const badDevice: Call = { headers: { 'x-device-id': 'my phone' } };
    expectRequest('GET', PULL, badDevice, false);
    expect((await call('GET', PULL, badDevice)).status).to.equal(400);

    const [head, payload] = server.token('alice').split('.') as [string, string];
    for (const token of [null, 'not-a-token', `${head}.${payload}.forged`]) expect((await call('GET', PULL, { token })).status, String(token)).to.equal(401);

    for (const c of [{ query: { schema_version: '2' } }, { headers: { 'x-schema-version': '0' } }]) {
      const answer = await call('GET', PULL, c);
      expect([answer.status, answer.body.error.details], JSON.stringify(c)).to.deep.equal([426, { min: 1, max: 1 }]);
    }
  });

  it('push: 200 with update/update, update/delete and delete/update conflicts, and the same answer for a replayed push_id', async () => {
    const { request, answer } = await pushConflicts('alice');
    const conflicts = (answer.body.conflicts as Array<Record<string, unknown>>).map((c) => [c['table'], c['type'], c['resolution']]);
    expect(conflicts).to.have.deep.members([
      ['captures', 'update_update', 'per_column'],
      ['todos', 'update_update', 'per_column'],
      ['ideas', 'update_delete', 'delete_wins'],
      ['projects', 'delete_update', 'delete_wins'],
    ]);
    const capture = answer.body.conflicts.find((c: { table: string }) => c.table === 'captures');
    expect([capture.client_columns, capture.server_columns]).to.deep.equal([['tags'], ['state']]);
    expect((await push(request)).body).to.deep.equal(answer.body);
  });

  it('push: 400 with details for what the document refuses too, and for what only the server can tell', async () => {
    const [captures, todos] = [spec('captures'), spec('todos')];
    const bodies = [
      { changes: { captures: { created: [{ ...sample(captures, 'x', 1), colour: 'red' }] } } },
      { changes: { captures: { created: [{ ...sample(captures, 'x', 1), duration_ms: 'long' }] } } },
      { changes: { todos: { updated: [{ id: 't', state: 'lost' }] } } },
      { changes: { notes: { created: [{ id: 'n' }] } } },
      { last_pulled_at: -1, changes: {} },
      { changes: {}, extra: true },
      { last_pulled_at: null },
    ];
    for (const body of bodies) {
      expectRequest('POST', PUSH, { body }, false);
      const answer = await push({ body }, 400);
      expect(answer.body.error.details, JSON.stringify(body)).to.be.an('array').that.is.not.empty;
    }
    // Valid by the document; refused by the server, which knows the stored rows and the whole batch.
    for (const body of [{ changes: { todos: { created: [sample(todos, 'd', 1)], updated: [sample(todos, 'd', 2)] } } }, { changes: { todos: { created: [{ id: 'no-description' }] } } }]) {
      expectRequest('POST', PUSH, { body }, true);
      const answer = await push({ body }, 400);
      expect(answer.body.error.details[0]).to.include({ table: 'todos' });
    }
    await push({ rawBody: '{"changes": {', headers: {} }, 400);
    await push({ rawBody: '{"changes": {}}', headers: { 'content-type': 'text/plain' } }, 400);
    await push({ rawBody: '{"changes": {}}', headers: { 'content-encoding': 'compress' } }, 400);
  });

  it("push: 401 without a token, 403 for another user's user_id, 409 for a reused push_id, 413 for too many records or bytes, 426", async () => {
    const idea = (id: string) => ({ id, text: `idea ${id}` });
    expect((await push({ token: null, body: { changes: {} } }, 401)).body.error.code).to.equal('TOKEN_MISSING');

    const spoof: Call = { body: { changes: { ideas: { created: [{ ...idea('i1'), user_id: 'mallory' }] } } } };
    expectRequest('POST', PUSH, spoof, true);
    expect((await push(spoof, 403)).body.error.details[0]).to.include({ table: 'ideas', id: 'i1', column: 'user_id' });

    await push({ body: { push_id: 'batch-1', changes: { ideas: { created: [idea('i2')] } } } });
    expect((await push({ body: { push_id: 'batch-1', changes: { ideas: { created: [idea('i3')] } } } }, 409)).body.error.code).to.equal('PUSH_ID_REUSED');

    const many: Call = { body: { changes: { ideas: { deleted: Array.from({ length: MAX_RECORDS + 1 }, (_, i) => `gone-${i}`) } } } };
    expectRequest('POST', PUSH, many, true);
    expect((await push(many, 413)).body.error.details).to.deep.equal({ max_records: MAX_RECORDS, records: MAX_RECORDS + 1 });
    const big = { changes: { ideas: { created: [{ id: 'big', text: 'x'.repeat(MAX_BODY) }] } } };
    expect((await push({ body: big }, 413)).body.error.details).to.deep.equal({ max_bytes: MAX_BODY });

    expect((await push({ query: { schema_version: '7' }, body: { changes: {} } }, 426)).body.error.details).to.deep.equal({ min: 1, max: 1 });
  });

  it('admin stats: 200 for an admin, 400 for a bad window, 401 without a token, 403 for anyone else', async () => {
    const since = Date.now();
    await pushConflicts('bob');
    await call('GET', PULL, { user: 'bob', query: { last_pulled_at: '0' } });
    await ctx.database.db('sync_failure_streaks').insert({ user_id: 'flaky', streak: 5, updated_at: Date.now(), last_error_code: 'UNAVAILABLE' });
    // sync_logs is written off the request path, at least every second (earlier tests' entries may land too: they are older).
    const logged = async () => Number((await ctx.database.db('sync_logs').where('started_at', '>=', since).count({ n: '*' }))[0]!['n']);
    for (let i = 0; i < 50 && (await logged()) < 4; i++) await new Promise((r) => setTimeout(r, 100));

    const stats = await call('GET', STATS, { admin: true, query: { since: String(since) } });
    expect(stats.status).to.equal(200);
    // The window starts at since's whole minute, which may hold earlier tests' syncs too (the log
    // writes in order, so all of them are in by now).
    const minute = since - (since % 60_000);
    const count = async (type: string) => Number((await ctx.database.db('sync_logs').where('started_at', '>=', minute).andWhere('sync_type', type).count({ n: '*' }))[0]!['n']);
    expect(stats.body.since).to.equal(minute);
    expect([stats.body.pull.count, stats.body.push.count]).to.deep.equal([await count('pull'), await count('push')]);
    expect(stats.body.pull.count).to.be.at.least(1);
    expect(stats.body.push.count).to.be.at.least(3);
    expect(stats.body.conflicts.length).to.be.at.least(4);
    // Earlier tests' failures may land in the streaks after the reset: flaky is among the users.
    expect(stats.body.failing_users.find((u: { user_id: string }) => u.user_id === 'flaky')).to.include({ streak: 5, last_error_code: 'UNAVAILABLE' });
    const empty: Call = { admin: true, query: { since: '0', until: '1' } };
    expectRequest('GET', STATS, empty, true);
    expect((await call('GET', STATS, empty)).body.pull).to.include({ count: 0, success_rate: null });

    const bad: Call = { admin: true, query: { since: 'last week' } };
    expectRequest('GET', STATS, bad, false);
    expect((await call('GET', STATS, bad)).status).to.equal(400);
    expect((await call('GET', STATS, { admin: true, query: { since: '10', until: '5' } })).status).to.equal(400);
    expect((await call('GET', STATS, { token: null })).status).to.equal(401);
    expect((await call('GET', STATS, { user: 'bob' })).status).to.equal(403);
  });

  it('admin series and runtime: 200 for an admin, 400 for a bad window or bucket, 401 without a token, 403 for anyone else', async () => {
    // A whole minute (the figures are kept per minute), so the window is answered as asked.
    const from = Date.now() - 1000 - ((Date.now() - 1000) % 60_000);
    await pushConflicts('carl');
    const logged = async () => Number((await ctx.database.db('sync_logs').where('started_at', '>=', from).count({ n: '*' }))[0]!['n']);
    for (let i = 0; i < 50 && (await logged()) < 3; i++) await new Promise((r) => setTimeout(r, 100));

    const query: Call = { admin: true, query: { from: String(from), to: String(from + 180_000), bucket: '180000' } };
    expectRequest('GET', SERIES, query, true);
    const series = await call('GET', SERIES, query);
    expect(series.status, series.text).to.equal(200);
    expect(series.body.buckets).to.have.length(1);
    expect(series.body.buckets[0].push.count).to.be.at.least(3);
    expect(series.body.conflicts).to.have.length(4);
    expect((await call('GET', SERIES, { admin: true })).status).to.equal(200);

    for (const bad of [{ bucket: '10' }, { from: 'an hour ago' }, { bucket: '100000000' }, { bucket: '90000' }] as Array<Record<string, string>>) {
      expectRequest('GET', SERIES, { query: bad }, false);
      expect((await call('GET', SERIES, { admin: true, query: bad })).status, JSON.stringify(bad)).to.equal(400);
    }
    // Valid by the document, refused by the server: from after to, and too many buckets.
    for (const bad of [{ from: '10', to: '5' }, { from: '0', to: String(2000 * 60_000) }]) {
      expectRequest('GET', SERIES, { query: bad }, true);
      expect((await call('GET', SERIES, { admin: true, query: bad })).status, JSON.stringify(bad)).to.equal(400);
    }
    expect((await call('GET', SERIES, { token: null })).status).to.equal(401);
    expect((await call('GET', SERIES, { user: 'carl' })).status).to.equal(403);

    const runtime = await call('GET', RUNTIME, { admin: true });
    expect([runtime.status, typeof runtime.body.pool]).to.deep.equal([200, 'object']);
    expect((await call('GET', RUNTIME, { token: null })).status).to.equal(401);
    expect((await call('GET', RUNTIME, { user: 'carl' })).status).to.equal(403);
  });

  it('429 RATE_LIMITED with Retry-After over the per-user limit', async () => {
    const limited = await startTestServer(ctx.database.db, { RATE_LIMIT_USER_PER_MINUTE: '1' });
    try {
      expect((await call('GET', PULL, {}, limited)).status).to.equal(200);
      const refused = await call('POST', PUSH, { body: { changes: {} } }, limited);
      expect([refused.status, refused.body.error.code]).to.deep.equal([429, 'RATE_LIMITED']);
    } finally {
      await limited.close();
    }
  });

  if (name === 'postgres') {
    it('readyz: 503 UNAVAILABLE once the database cannot be reached (PostgreSQL, through a proxy the test cuts)', async () => {
      const url = new URL(process.env['DATABASE_URL']!);
      const [host, port] = [url.hostname, Number(url.port || 5432)];
      const sockets = new Set<Socket>();
      const proxy = createServer((client) => {
        const upstream = connect(port, host);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => s.destroy());
        }
        client.pipe(upstream).pipe(client);
      }).listen(0, '127.0.0.1');
      await new Promise((r) => proxy.once('listening', r));
      url.host = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
      const searchPath = ((ctx.database.db.client as { config: Knex.Config }).config.searchPath as string[])[0]!;
      const db = openDatabase({ kind: 'postgres', url: url.toString(), poolMax: 2, searchPath });
      const cut = await startTestServer(db);
      try {
        expect((await call('GET', '/readyz', { token: null }, cut)).status).to.equal(200);
        proxy.close();
        for (const s of sockets) s.destroy();
        // /readyz keeps its answer for a second (one database round trip a second at most):
        // ask until that second is over, with a generous deadline.
        let down = await call('GET', '/readyz', { token: null }, cut);
        for (const until = Date.now() + 15_000; down.status === 200 && Date.now() < until; ) {
          await new Promise((r) => setTimeout(r, 100));
          down = await call('GET', '/readyz', { token: null }, cut);
        }
        expect([down.status, down.body.error.code]).to.deep.equal([503, 'UNAVAILABLE']);
      } finally {
        proxy.close();
        for (const s of sockets) s.destroy();
        await cut.close();
        await db.destroy();
      }
    });
  }

  it('GET /api/openapi.json serves docs/openapi.yaml as JSON to anyone, with or without a token', async () => {
    // Without a token (it answered 401 before the document was made public).
    const answer = await call('GET', '/api/openapi.json', { token: null });
    expect(answer.status, answer.text.slice(0, 200)).to.equal(200);
    expect(answer.headers.get('content-type')).to.match(/^application\/json/);
    expect(answer.body).to.deep.equal(loadOpenApi());
    expect(answer.body.paths['/api/openapi.json'].get.security).to.deep.equal([]);
    // A token, even a bad one, changes nothing: the route does not read it.
    expect((await call('GET', '/api/openapi.json')).body).to.deep.equal(answer.body);
    expect((await call('GET', '/api/openapi.json', { token: 'not-a-token' })).status).to.equal(200);
  });

  it('GET /api/sync/live: the event stream to its bye (a token that expires at once), and its refusals', async function () {
    this.timeout(20_000);
    const token = signToken(server.config.jwt, 'alice', { expiresInSeconds: 1 });
    const answer = await call('GET', '/api/sync/live', { token, headers: { 'x-device-id': 'phone' } });
    expect(answer.status).to.equal(200);
    expect(answer.headers.get('content-type')).to.match(/^text\/event-stream/);
    expect(answer.text).to.match(/event: bye\ndata: \{"code":"TOKEN_EXPIRED"/);
    expect((await call('GET', '/api/sync/live', { token: null })).status).to.equal(401);
  });

  it('documents every route of the app, and calls every documented operation with an answer that fits it (on its own too)', async function () {
    this.timeout(60_000);
    // With METRICS_TOKEN (and no METRICS_PORT) the public app has GET /metrics too.
    const metricsToken = 'metrics-token-0123456789abcdef';
    const config = loadConfig({ JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', METRICS_TOKEN: metricsToken });
    const container = buildContainer(config, ctx.database.db, pino({ level: 'silent' }));
    let routes: string[];
    try {
      const app = container.get<Koa>(ROOT.HttpApp);
      routes = (app.middleware as Array<{ router?: { stack: Array<{ path: string; methods: string[] }> } }>)
        .flatMap((m) => m.router?.stack ?? [])
        .flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${layer.path}`));
    } finally {
      await disposeContainer(container);
    }
    expect(routes.length).to.be.greaterThan(5);
    expect(contract.operations().sort(), 'the operations of docs/openapi.yaml').to.deep.equal([...new Set(routes)].sort());
    // One successful call per operation, made here so this test does not depend on the others having run.
    const withMetrics = await startTestServer(ctx.database.db, { METRICS_PORT: '', METRICS_TOKEN: metricsToken });
    try {
      const probes: Record<string, Call & { base?: TestServer }> = {
        'GET /healthz': { token: null },
        'GET /readyz': { token: null },
        'GET /metrics': { token: metricsToken, base: withMetrics },
        [`GET ${PULL}`]: { query: { last_pulled_at: 'null' } },
        [`POST ${PUSH}`]: { body: { last_pulled_at: null, changes: {} } },
        // A token that expires at once: the stream ends with its bye.
        'GET /api/sync/live': { token: signToken(server.config.jwt, 'alice', { expiresInSeconds: 1 }) },
        [`GET ${STATS}`]: { admin: true, query: { since: '0' } },
        [`GET ${SERIES}`]: { admin: true },
        [`GET ${RUNTIME}`]: { admin: true },
        'GET /api/openapi.json': { token: null },
      };
      expect(Object.keys(probes).sort(), 'documented operations this test has no call for').to.deep.equal(contract.operations().sort());
      for (const [operation, { base, ...c }] of Object.entries(probes)) {
        const [method, path] = operation.split(' ') as ['GET' | 'POST', string];
        expect((await call(method, path, c, base)).status, operation).to.equal(200);
      }
    } finally {
      await withMetrics.close();
    }
    const called = new Set([...contract.seen].map((s) => s.split(' ').slice(0, 2).join(' ')));
    expect(contract.operations().filter((op) => !called.has(op)), 'documented operations not called').to.deep.equal([]);
  });
});
