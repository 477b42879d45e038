import { expect } from 'chai';
import type { Knex } from 'knex';
import { FetchEventSource } from '../../mobile/src/adapters/fetch-event-source';
import { SseLiveTransport } from '../../mobile/src/adapters/sse-live-transport';
import { describeEachDatabase } from '../support/databases';
import { deviceRows, openDevice, type Device } from '../support/device';
import { openChannel } from '../support/live';
import { startTestServer, type TestServer } from '../support/server';

/**
 * Live sync end to end: real mobile clients (OP-SQLite files) with the SSE live channel, against
 * real servers over HTTP. On PostgreSQL the two devices talk to two servers, each with its own
 * pool and its own LISTEN connection; on PGlite (one process only) to one server.
 */

const HOUR = 3_600_000;

/** Resolves when `probe` holds, checked whenever the device publishes a status; rejects after `timeoutMs`. */
function whenDevice(d: Device, probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    let stop = () => {};
    const timer = setTimeout(() => {
      done = true;
      stop();
      reject(new Error(`timed out: ${what}`));
    }, timeoutMs);
    const check = () =>
      void probe().then((ok) => {
        if (!ok || done) return;
        done = true;
        clearTimeout(timer);
        stop();
        resolve();
      }, () => undefined);
    stop = d.client.subscribe(check);
    check();
  });
}

describeEachDatabase('live sync between devices', (ctx, name) => {
  let serverA: TestServer;
  let serverB: TestServer;
  let otherPool: Knex | null = null;
  const devices: Device[] = [];
  before(async () => {
    serverA = await startTestServer(ctx.database.db);
    if (name === 'postgres') {
      otherPool = ctx.database.openAnother!(5);
      serverB = await startTestServer(otherPool);
    } else {
      serverB = serverA;
    }
  });
  afterEach(async () => {
    for (const d of devices.splice(0)) await d.client.close().catch(() => undefined);
  });
  after(async () => {
    if (serverB !== serverA) await serverB.close();
    await serverA.close();
    await otherPool?.destroy();
  });

  /** A device with no trigger but the live channel: no poll within the test, no launch sync after the first. */
  async function liveDevice(server: TestServer, user: string): Promise<Device> {
    const d = await openDevice(server, user, {
      extra: {
        pollIntervalMs: HOUR,
        live: {
          transport: (deviceId) => new SseLiveTransport({ baseUrl: server.url, getToken: () => server.token(user), deviceId, eventSource: (url, o) => new FetchEventSource(url, o) }),
        },
      },
    });
    devices.push(d);
    return d;
  }

  it("device A's capture reaches device B's SQLite with no other trigger, B listening on another server (its own pool and LISTEN connection on PostgreSQL)", async () => {
    const a = await openDevice(serverA, 'alice');
    devices.push(a);
    const b = await liveDevice(serverB, 'alice');
    b.client.start();
    await whenDevice(b, async () => b.client.getStatus().live && b.client.getStatus().state === 'idle', 'B live and idle');
    const pullsBefore = b.requests.filter((r) => r.kind === 'pull').length;
    await a.client.local.create('captures', { id: 'live1', type: 'text', raw_content: 'seen on the tablet' });
    expect((await a.client.sync()).isOk()).to.equal(true);
    await whenDevice(b, async () => (await deviceRows(b, 'captures')).some((r) => r['id'] === 'live1'), "A's capture on B");
    expect(b.requests.filter((r) => r.kind === 'pull').length).to.be.greaterThan(pullsBefore);
    // And again: the channel stays open for the next poke.
    await a.client.local.create('captures', { id: 'live2', type: 'text', raw_content: 'second' });
    await a.client.sync();
    await whenDevice(b, async () => (await deviceRows(b, 'captures')).some((r) => r['id'] === 'live2'), "A's second capture on B");
  });

  it('the listening connection is killed while pushes continue: a check-now poke after reconnect, and B ends with every row', async function () {
    if (name !== 'postgres') this.skip(); // PGlite's listener is in-process: there is no connection to kill
    this.timeout(60_000);
    const a = await openDevice(serverA, 'bob');
    devices.push(a);
    const b = await liveDevice(serverB, 'bob');
    b.client.start();
    await whenDevice(b, async () => b.client.getStatus().live && b.client.getStatus().state === 'idle', 'B live and idle');
    const watcher = openChannel(serverB.url, serverB.token('bob'), 'watcher');
    await watcher.waitFor((e) => e.type === 'hello', 'hello');
    const schema = String((await ctx.database.db.raw('select current_schema() as s')).rows[0].s);
    let written = 0;
    const write = async () => {
      await a.client.local.create('ideas', { id: `i${++written}`, text: `idea ${written}` });
      await a.client.sync();
    };
    await write();
    // Every LISTEN connection of this run's channel (both servers'), terminated by PostgreSQL.
    const killed = await ctx.database.db.raw(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = left('note-sync-live sync_live.' || ?, 63)`, [schema]);
    expect(killed.rows.length).to.be.at.least(1);
    for (let i = 0; i < 5; i++) await write();
    const check = await watcher.waitFor((e) => e.type === 'check', 'the check-now poke', 30_000);
    expect(JSON.parse(check.data!)).to.deep.equal({ reason: 'listener_reconnected' });
    for (let i = 0; i < 3; i++) await write();
    await whenDevice(b, async () => (await deviceRows(b, 'ideas')).length === written, `all ${written} ideas on B`, 30_000);
    watcher.close();
  });
});
