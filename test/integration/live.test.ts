import { expect } from 'chai';
import { errAsync } from 'neverthrow';
import { connect } from 'node:net';
import { pino } from 'pino';
import { signToken } from '../../src/adapters/crypto/jwt-token-issuer';
import { KnexChangeStore } from '../../src/adapters/postgres/knex-change-store';
import { syncError } from '../../src/domain';
import { describeEachDatabase } from '../support/databases';
import { expectError, send } from '../support/http-helpers';
import { dataOf, openChannel, type TestChannel } from '../support/live';
import { startTestServer, type TestServer } from '../support/server';
import { parsePrometheusText } from './prometheus-text';

/**
 * GET /api/sync/live (docs/protocol.md, "Live channel"): pokes at commit, one per push, never for
 * a rolled-back one; limits, token expiry, slow clients and shutdown. In-process servers over the
 * real database; the cross-process and device cases are in test/e2e/live-sync.test.ts.
 */

const SLOW_CLIENT_MS = 300;
const capture = (id: string) => ({ id, type: 'text', raw_content: `note ${id}`, tags: '[]', created_at: 1000 });
const changes = (c: TestChannel) => c.events.filter((e) => e.type === 'change').map(dataOf);

async function scrape(server: TestServer) {
  return parsePrometheusText((await send(`${server.metricsUrl}/metrics`)).text);
}

/** Waits until `probe` holds, checking after each turn of `step` (a condition, never a fixed sleep standing for one). */
async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describeEachDatabase('live channel', (ctx, name) => {
  let server: TestServer;
  const open: TestChannel[] = [];
  const channel = (user: string, device?: string, token?: string) => {
    const c = openChannel(server.url, token ?? server.token(user), device);
    open.push(c);
    return c;
  };
  before(async () => {
    server = await startTestServer(ctx.database.db, { LIVE_MAX_CONNECTIONS_PER_USER: '3', LIVE_SLOW_CLIENT_MS: String(SLOW_CLIENT_MS) });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  after(() => server.close());

  it("tells the user's channels the new mark and the writing device, once per push, and no one else", async () => {
    const tablet = channel('alice', 'tablet');
    const bob = channel('bob', 'bob-phone');
    await Promise.all([tablet.waitFor((e) => e.type === 'hello', 'hello'), bob.waitFor((e) => e.type === 'hello', 'hello')]);
    const pushed = await server.client('alice', 'phone').push({ last_pulled_at: null, changes: { captures: { created: [capture('c1')] } } });
    expect(pushed.status).to.equal(200);
    const poke = dataOf(await tablet.waitFor((e) => e.type === 'change', 'the poke'));
    expect(poke).to.deep.equal({ mark: pushed.body.timestamp, device_id: 'phone' });
    // Bob's first poke is his own push's: he never heard Alice's (notifications arrive in commit order).
    const bobs = await server.client('bob', 'bob-phone').push({ last_pulled_at: null, changes: { captures: { created: [capture('b1')] } } });
    expect(dataOf(await bob.waitFor((e) => e.type === 'change', "bob's poke"))).to.deep.equal({ mark: bobs.body.timestamp, device_id: 'bob-phone' });
    expect(changes(bob)).to.have.length(1);
  });

  it('sends one poke for a push of 1,000 records, not 1,000', async () => {
    const tablet = channel('alice', 'tablet');
    await tablet.waitFor((e) => e.type === 'hello', 'hello');
    const phone = server.client('alice', 'phone');
    const big = await phone.push({ last_pulled_at: null, changes: { captures: { created: Array.from({ length: 1000 }, (_, i) => capture(`c${i}`)) } } });
    expect(big.status).to.equal(200);
    const next = await phone.push({ last_pulled_at: big.body.timestamp, changes: { todos: { created: [{ id: 't1', description: 'after', created_at: 1 }] } } });
    await tablet.waitFor((e) => e.type === 'change' && dataOf(e).mark === next.body.timestamp, "the second push's poke");
    expect(changes(tablet).map((c) => c.mark)).to.deep.equal([big.body.timestamp, next.body.timestamp]);
  });

  it('sends no poke for a rolled-back push, nor for a push that wrote nothing', async () => {
    const tablet = channel('alice', 'tablet');
    await tablet.waitFor((e) => e.type === 'hello', 'hello');
    // A transaction that announced its mark, then failed: PostgreSQL drops the NOTIFY with it.
    const store = new KnexChangeStore(ctx.database.db);
    const failed = await store.inPushTransaction('alice', (tx) => tx.announce(123, 'ghost').andThen(() => errAsync(syncError('INTERNAL', 'fails after announcing'))));
    expect(failed.isErr()).to.equal(true);
    // Bad input (a record without its required column) fails inside the push's transaction.
    const phone = server.client('alice', 'phone');
    const bad = await phone.push({ last_pulled_at: null, changes: { todos: { created: [{ id: 't1', created_at: 1 }] } } });
    expectError(bad, 400, 'VALIDATION_FAILED');
    const good = await phone.push({ last_pulled_at: null, changes: { captures: { created: [capture('c1')] } } });
    // A delete of a record the server never had writes nothing, so announces nothing.
    const again = await phone.push({ last_pulled_at: good.body.timestamp, changes: { captures: { deleted: ['never-existed'] } } });
    expect(again.status).to.equal(200);
    const last = await phone.push({ last_pulled_at: good.body.timestamp, changes: { captures: { created: [capture('c2')] } } });
    await tablet.waitFor((e) => e.type === 'change' && dataOf(e).mark === last.body.timestamp, 'the last push');
    expect(changes(tablet).map((c) => c.mark)).to.deep.equal([good.body.timestamp, last.body.timestamp]);
  });

  it('refuses a channel without a token, with a token in the URL, and beyond the per-user limit (429 RATE_LIMITED)', async () => {
    expectError(await send(`${server.url}/api/sync/live`), 401, 'TOKEN_MISSING');
    expectError(await send(`${server.url}/api/sync/live?token=${server.token('alice')}`), 401, 'TOKEN_MISSING');
    const three = [channel('alice', 'a'), channel('alice', 'b'), channel('alice', 'c')];
    await Promise.all(three.map((c) => c.waitFor((e) => e.type === 'hello', 'hello')));
    const fourth = await send(`${server.url}/api/sync/live`, { headers: { authorization: `Bearer ${server.token('alice')}` } });
    const details = expectError(fourth, 429, 'RATE_LIMITED');
    expect(details).to.include({ limit: 'live_connections_per_user', max: 3 });
    expect(fourth.headers.get('retry-after')).to.equal('30');
    // Another user is not affected.
    await channel('bob').waitFor((e) => e.type === 'hello', "bob's hello");
    const m = await scrape(server);
    expect(m.get('sync_live_connections')).to.equal(4);
    expect(m.get('sync_live_dropped_total', { reason: 'per_user' })).to.be.at.least(1);
  });

  it('refuses a channel beyond the per-process limit (429 RATE_LIMITED, details.limit) and takes one again once a channel closed', async () => {
    const own = await startTestServer(ctx.database.db, { LIVE_MAX_CONNECTIONS: '2' });
    try {
      const first = openChannel(own.url, own.token('u1'));
      const second = openChannel(own.url, own.token('u2'));
      await Promise.all([first, second].map((c) => c.waitFor((e) => e.type === 'hello', 'hello')));
      const third = await send(`${own.url}/api/sync/live`, { headers: { authorization: `Bearer ${own.token('u3')}` } });
      expect(expectError(third, 429, 'RATE_LIMITED')).to.include({ limit: 'live_connections_per_process', max: 2 });
      first.close();
      await until(async () => (await scrape(own)).get('sync_live_connections') === 1, 'the closed channel forgotten');
      const again = openChannel(own.url, own.token('u3'));
      await again.waitFor((e) => e.type === 'hello', 'hello after a slot freed');
      again.close();
      second.close();
    } finally {
      await own.close();
    }
  });

  it('closes the channel with bye TOKEN_EXPIRED when the token expires', async function () {
    this.timeout(20_000);
    const token = signToken(server.config.jwt, 'alice', { expiresInSeconds: 2 });
    const c = channel('alice', 'tablet', token);
    const hello = dataOf(await c.waitFor((e) => e.type === 'hello', 'hello'));
    expect(hello.expires_at).to.be.a('number');
    const bye = await c.waitFor((e) => e.type === 'bye', 'bye', 15_000);
    expect(dataOf(bye).code).to.equal('TOKEN_EXPIRED');
    expect(Date.now()).to.be.at.least(hello.expires_at);
    await c.waitFor((e) => e.type === 'done', 'the end of the stream');
  });

  it('drops a client that never reads instead of buffering for it', async function () {
    this.timeout(90_000);
    // The rule is the HTTP adapter's, the same over either database. Filling tens of MB of
    // loopback buffers takes PostgreSQL two seconds of NOTIFY; through PGlite, on the test's own
    // thread, over half a minute (more on a busy machine): run where it is quick.
    if (name === 'pglite') this.skip();
    const before = await scrape(server);
    const dropped0 = before.get('sync_live_dropped_total', { reason: 'slow_client' }) ?? 0;
    // A raw socket that sends the request and never reads a byte of the answer.
    const socket = connect({ host: '127.0.0.1', port: server.port });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.pause();
    socket.write(`GET /api/sync/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token('slow')}\r\n\r\n`);
    await until(async () => (await scrape(server)).get('sync_live_connections') === 1, 'the slow channel is open');
    // Pokes by the thousand straight from the database, each near the 8,000-byte payload limit (a
    // long device id), so the kernel's buffers (tens of MB on loopback) fill in seconds.
    const db = ctx.database.db;
    const schema = String((await db.raw('select current_schema() as s')).rows[0].s);
    // Pumped without pause while the test waits for the drop: bursts with gaps would let a
    // loopback socket's growing kernel buffers take a little more each time.
    // PGlite runs each statement on this thread: smaller rounds let the server's timers run between them.
    const PER_ROUND = ctx.database.name === 'pglite' ? 200 : 2000;
    let rounds = 0;
    let pumping = true;
    const pump = (async () => {
      while (pumping) {
        rounds++;
        await db.raw(
          `SELECT pg_notify(left('sync_live.' || ?, 63), json_build_object('u', 'slow', 'm', g + ?::int8 * 100000, 'd', repeat('x', 7000))::text) FROM generate_series(1, ?::int) g`,
          [schema, rounds, PER_ROUND],
        );
      }
    })();
    try {
      await until(async () => ((await scrape(server)).get('sync_live_dropped_total', { reason: 'slow_client' }) ?? 0) > dropped0, 'the slow client dropped', 50_000);
    } finally {
      pumping = false;
      await pump;
    }
    const after = await scrape(server);
    expect(after.get('sync_live_connections')).to.equal(0);
    // It was dropped with at most a socket's worth in flight, not a queue of every poke.
    expect(after.get('sync_live_pokes_total')! - (before.get('sync_live_pokes_total') ?? 0)).to.be.below(rounds * PER_ROUND);
    socket.destroy();
  });

  it('closes every channel with bye SHUTTING_DOWN on close, and close completes', async () => {
    const own = await startTestServer(ctx.database.db, {}, { logger: pino({ level: 'silent' }) });
    const c = openChannel(own.url, own.token('alice'), 'tablet');
    await c.waitFor((e) => e.type === 'hello', 'hello');
    await own.close();
    expect(dataOf(await c.waitFor((e) => e.type === 'bye', 'bye')).code).to.equal('SHUTTING_DOWN');
    await c.waitFor((e) => e.type === 'done', 'the end of the stream');
  });
});
