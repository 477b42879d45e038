import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { send } from '../support/http-helpers';
import { startTestServer, type TestServer } from '../support/server';
import { parsePrometheusText, type Exposition } from './prometheus-text';

/**
 * GET /metrics (spec §4.6): Prometheus text, and the counters move as syncs happen. Served on its
 * own listener (METRICS_PORT, 127.0.0.1 by default; the test servers take a free port) or, with
 * METRICS_TOKEN, on the public port behind that token; never on the public port without one.
 * Counters are read before and after each action and compared by difference.
 */

describe('the Prometheus text reader these tests rely on', () => {
  const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\n';
  it('reads a well-formed exposition', () => {
    expect(parsePrometheusText(ok).get('a_total', { x: '1' })).to.equal(3);
  });
  for (const [what, text] of [
    ['no final newline', ok.trimEnd()],
    ['an unquoted label', '# TYPE a gauge\na{x=1} 3\n'],
    ['a value that is no number', '# TYPE a gauge\na 3x\n'],
    ['a duplicate series', '# TYPE a gauge\na{x="1"} 3\na{x="1"} 4\n'],
    ['TYPE after samples', 'a 1\n# TYPE a gauge\n'],
    ['interleaved families', '# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x="2"} 1\n'],
    ['a histogram without +Inf', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
  ]) {
    it(`rejects ${what}`, () => {
      expect(() => parsePrometheusText(text!)).to.throw();
    });
  }
});

describeEachDatabase('GET /metrics', (ctx) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db);
  });
  after(() => server.close());

  async function scrape(target = server): Promise<Exposition> {
    const r = await send(`${target.metricsUrl}/metrics`);
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4(; charset=utf-8)?$/);
    return parsePrometheusText(r.text);
  }

  const PUSH_OK = { route: '/api/sync/push', method: 'POST', status: '200' };

  it('answers on the metrics listener, in the text format, with the sync, HTTP, pool and process families', async () => {
    const m = await scrape();
    const types = Object.fromEntries([...m.families].map(([name, f]) => [name, f.type]));
    expect(types).to.include({
      sync_records_total: 'counter',
      sync_operations_total: 'counter',
      sync_conflicts_total: 'counter',
      sync_log_dropped_total: 'counter',
      sync_log_write_failures_total: 'counter',
      sync_push_batch_records: 'histogram',
      http_request_duration_seconds: 'histogram',
      db_pool_connections: 'gauge',
      process_cpu_user_seconds_total: 'counter',
      nodejs_heap_size_used_bytes: 'gauge',
    });
    for (const state of ['used', 'free', 'pending']) expect(m.get('db_pool_connections', { state }), state).to.be.a('number');
    // The gauge follows the pool: a connection held here shows as used.
    const client = ctx.database.db.client as { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<unknown> };
    const held = await client.acquireConnection();
    try {
      expect((await scrape()).get('db_pool_connections', { state: 'used' })).to.be.at.least(1);
    } finally {
      await client.releaseConnection(held);
    }
    // prom-client counts CPU from its registration to the scrape, and Linux splits user from system
    // time by sampling: right after start the user part alone can still read 0, the sum cannot.
    expect(m.get('process_cpu_seconds_total')).to.be.above(0);
    for (const [name, f] of m.families) expect(f.help, `HELP of ${name}`).to.be.a('string').that.is.not.empty;
  });

  it('counts pushed records by table, the push, its batch size and its request', async () => {
    const before = await scrape();
    const r = await server.client('max', 'phone').push({
      changes: { ideas: { created: [{ id: 'i1', text: 'a' }, { id: 'i2', text: 'b' }, { id: 'i3', text: 'c' }] }, todos: { created: [{ id: 't1', description: 'x' }], deleted: ['t9'] } },
    });
    expect(r.status).to.equal(200);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => after.sum(name, labels) - before.sum(name, labels);

    expect(delta('sync_records_total', { table: 'ideas', direction: 'in' })).to.equal(3);
    expect(delta('sync_records_total', { table: 'todos', direction: 'in' })).to.equal(2);
    expect(delta('sync_records_total', { direction: 'out' })).to.equal(0);
    expect(delta('sync_operations_total', { type: 'push', status: 'success' })).to.equal(1);
    expect(delta('sync_operations_total', { type: 'push', status: 'failure' })).to.equal(0);
    expect(delta('sync_push_batch_records_count')).to.equal(1);
    expect(delta('sync_push_batch_records_sum')).to.equal(5);
    expect(delta('http_request_duration_seconds_count', PUSH_OK)).to.equal(1);
    expect(delta('http_request_duration_seconds_sum', PUSH_OK)).to.be.above(0);
  });

  it('counts pulled records as out, and a refused push as a failure with its status', async () => {
    const phone = server.client('nia', 'phone');
    expect((await phone.push({ changes: { projects: { created: [{ id: 'p1', name: 'home', archived: false }, { id: 'p2', name: 'work', archived: false }] } } })).status).to.equal(200);
    const before = await scrape();
    const pulled = await server.client('nia', 'laptop').pull({ last_pulled_at: 0 });
    expect(pulled.status).to.equal(200);
    const refused = await phone.push({ changes: { projects: { created: [{ id: 'p3', name: 42 }] } } });
    expect(refused.status).to.equal(400);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => after.sum(name, labels) - before.sum(name, labels);

    expect(delta('sync_records_total', { table: 'projects', direction: 'out' })).to.equal(2);
    expect(delta('sync_records_total', { direction: 'in' })).to.equal(0);
    expect(delta('sync_operations_total', { type: 'pull', status: 'success' })).to.equal(1);
    expect(delta('sync_operations_total', { type: 'push', status: 'failure' })).to.equal(1);
    expect(delta('sync_push_batch_records_count')).to.equal(0);
    expect(delta('http_request_duration_seconds_count', { route: '/api/sync/pull', method: 'GET', status: '200' })).to.equal(1);
    expect(delta('http_request_duration_seconds_count', { route: '/api/sync/push', method: 'POST', status: '400' })).to.equal(1);
  });

  it('counts a resolved conflict by table and type', async () => {
    const phone = server.client('ola', 'phone');
    expect((await phone.push({ changes: { ideas: { created: [{ id: 'i1', text: 'first' }] } } })).status).to.equal(200);
    const cursor = (await phone.pull({ last_pulled_at: 0 })).body.timestamp;
    expect((await server.client('ola', 'laptop').push({ last_pulled_at: cursor, changes: { ideas: { updated: [{ id: 'i1', text: 'laptop' }] } } })).status).to.equal(200);
    const before = await scrape();
    const r = await phone.push({ last_pulled_at: cursor, changes: { ideas: { updated: [{ id: 'i1', text: 'phone' }] } } });
    expect(r.body.conflicts).to.have.length(1);
    const after = await scrape();
    const delta = (labels: Record<string, string>) => after.sum('sync_conflicts_total', labels) - before.sum('sync_conflicts_total', labels);
    expect(delta({ table: 'ideas', type: 'update_update' })).to.equal(1);
    expect(delta({})).to.equal(1);
  });

  it('labels unknown paths "unmatched", so paths and ids cannot grow the series without bound', async () => {
    for (const path of ['/no/such/thing/123', '/no/such/thing/456', '/api/nope']) expect((await send(`${server.url}${path}`)).status).to.equal(404);
    const m = await scrape();
    const routes = new Set(m.samples.filter((s) => s.name === 'http_request_duration_seconds_count').map((s) => s.labels['route']));
    expect([...routes].some((r) => r!.includes('123') || r!.includes('nope'))).to.equal(false);
    expect(m.get('http_request_duration_seconds_count', { route: 'unmatched', method: 'GET', status: '404' })).to.be.at.least(3);
  });

  it('labels a request refused by authentication (401) with the route it asked for', async () => {
    expect((await send(`${server.url}/api/sync/pull`)).status).to.equal(401);
    expect((await send(`${server.url}/api/admin/sync/stats`)).status).to.equal(401);
    const m = await scrape();
    const routes = new Set(m.samples.filter((s) => s.name === 'http_request_duration_seconds_count').map((s) => s.labels['route']));
    for (const route of routes) expect(route, 'every route label is a route of the API or "unmatched"').to.match(/^(\/[a-z/]*|unmatched)$/);
    expect(m.get('http_request_duration_seconds_count', { route: '/api/sync/pull', method: 'GET', status: '401' })).to.equal(1);
    expect(m.get('http_request_duration_seconds_count', { route: '/api/admin/sync/stats', method: 'GET', status: '401' })).to.equal(1);
  });

  it('keeps each server\'s counters its own when two run in one process', async () => {
    const other = await startTestServer(ctx.database.db);
    try {
      const before = await scrape();
      expect((await other.client('pia').push({ changes: { ideas: { created: [{ id: 'i1', text: 'x' }] } } })).status).to.equal(200);
      const after = await scrape();
      expect(after.sum('sync_operations_total')).to.equal(before.sum('sync_operations_total'));
      expect((await scrape(other)).get('sync_operations_total', { type: 'push', status: 'success' })).to.equal(1);
    } finally {
      await other.close();
    }
  });
});

// Issue 20, item 11: anyone who could reach the API could read every metric.
describeEachDatabase('/metrics is not on the public port without auth', (ctx) => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('the public port answers 404 for /metrics; the metrics listener is on 127.0.0.1 and serves nothing else', async () => {
    server = await startTestServer(ctx.database.db);
    const publicAnswer = await send(`${server.url}/metrics`);
    expect(publicAnswer.status).to.equal(404);
    expect(publicAnswer.body.error.code).to.equal('NOT_FOUND');
    expect(publicAnswer.text).not.to.include('sync_operations_total');
    expect(server.metricsUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.metricsUrl).not.to.equal(server.url);
    expect((await send(`${server.metricsUrl}/metrics`)).status).to.equal(200);
    for (const path of ['/api/sync/pull?last_pulled_at=0', '/healthz', '/nope']) expect((await send(`${server.metricsUrl}${path}`)).status, path).to.equal(404);
  });

  it('without METRICS_PORT nor METRICS_TOKEN, metrics are served nowhere', async () => {
    server = await startTestServer(ctx.database.db, { METRICS_PORT: '' });
    expect(server.metricsUrl).to.equal(undefined);
    expect((await send(`${server.url}/metrics`)).status).to.equal(404);
  });

  it('with METRICS_TOKEN, the public port serves /metrics to that bearer token only (bad tokens tried: none, wrong, a prefix, the user JWT)', async () => {
    const token = 'metrics-token-0123456789abcdef';
    server = await startTestServer(ctx.database.db, { METRICS_PORT: '', METRICS_TOKEN: token });
    const scrape = (authorization?: string) => send(`${server!.url}/metrics`, authorization ? { headers: { authorization } } : {});
    for (const bad of [undefined, 'Bearer wrong', `Bearer ${token.slice(0, -1)}`, `Bearer ${token}x`, `Bearer ${server.token('alice')}`, token]) {
      const r = await scrape(bad);
      expect(r.status, String(bad)).to.equal(401);
      expect(r.body.error.code).to.equal(bad?.startsWith('Bearer ') ? 'TOKEN_INVALID' : 'TOKEN_MISSING');
      expect(r.text).not.to.include('sync_operations_total');
    }
    const ok = await scrape(`Bearer ${token}`);
    expect(ok.status).to.equal(200);
    expect(ok.text).to.include('sync_operations_total');
  });

  it('with both, the metrics listener asks for the token too, and the public port still answers 404', async () => {
    const token = 'metrics-token-0123456789abcdef';
    server = await startTestServer(ctx.database.db, { METRICS_TOKEN: token });
    expect((await send(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).to.equal(404);
    expect((await send(`${server.metricsUrl}/metrics`)).status).to.equal(401);
    expect((await send(`${server.metricsUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).to.equal(200);
  });
});
