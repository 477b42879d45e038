import { expect } from 'chai';
import { FetchSyncTransport } from '../../mobile/src/adapters/fetch-transport';
import { Rng } from '../support/convergence/rng';
import { describeEachDatabase } from '../support/databases';
import { deviceRows, useDevices } from '../support/device';
import { checkAppliedOnce, RetryingPusher } from '../support/retrying-pusher';
import { TcpProxy, type ChunkAction } from '../support/tcp-proxy';

/**
 * Connections that misbehave between the client and the server, at the socket level (the
 * fetch-level faults of the convergence suite never reach the server's own error paths): a TCP
 * proxy resets connections mid-request and mid-answer, stalls them (the client's timeout ends
 * the wait) and truncates answers. Writers retrying with their push_id store every write exactly
 * once, and a real device syncing through the proxy ends equal to one syncing directly.
 */

const SEED = Number(process.env['SOCKET_FAULTS_SEED'] ?? 7);

function seededFaults(rng: Rng, rates: { cut: number; truncate: number; stall: number }): (c: { offset: number; length: number }) => ChunkAction {
  return ({ length }) => {
    const r = rng.next();
    if (r < rates.cut) return 'cut';
    if (r < rates.cut + rates.truncate) return { truncate: rng.int(0, Math.max(0, length - 1)) };
    if (r < rates.cut + rates.truncate + rates.stall) return 'stall';
    return 'pass';
  };
}

describeEachDatabase('socket faults between the client and the server', (ctx) => {
  const { server, device } = useDevices(ctx);
  let proxy: TcpProxy;
  beforeEach(async () => {
    proxy = await TcpProxy.start('127.0.0.1', server().port);
  });
  afterEach(() => proxy.close());

  it(`stores every retried push exactly once through resets, stalls and truncated answers (seed ${SEED})`, async function () {
    this.timeout(180_000);
    const rng = new Rng(SEED);
    proxy.faults = seededFaults(rng, { cut: 0.06, truncate: 0.04, stall: 0.02 });
    const writers = Array.from({ length: 3 }, (_, w) => {
      const pusher = new RetryingPusher({ baseUrl: () => `http://127.0.0.1:${proxy.port}`, token: server().token(`flaky-${w}`), deviceId: `d${w}`, timeoutMs: 2_000, retryDelayMs: () => 10 });
      return { user: `flaky-${w}`, pusher, plan: pusher.plan(`f${w}`, 15, 20) };
    });
    await Promise.all(writers.map((w) => w.pusher.pushAll(w.plan)));

    // The faults happened, on both directions' paths, and were retried through.
    expect(proxy.counts.cut, 'cut').to.be.greaterThan(0);
    expect(proxy.counts.truncated, 'truncated').to.be.greaterThan(0);
    expect(proxy.counts.stalled, 'stalled').to.be.greaterThan(0);
    const kinds = new Set(writers.flatMap((w) => w.pusher.attempts.map((a) => a.kind)));
    expect([...kinds]).to.include.members(['ok', 'network', 'timeout']);
    for (const w of writers) expect(await checkAppliedOnce(ctx.database.db, w.user, w.plan), w.user).to.deep.equal([]);
  });

  it(`lets a real device sync through them and end equal to one syncing directly (seed ${SEED})`, async function () {
    this.timeout(180_000);
    const rng = new Rng(SEED + 1);
    const flakyUrl = `http://127.0.0.1:${proxy.port}`;
    const phone = await device('socket-user', {
      extra: { transport: (deviceId) => new FetchSyncTransport({ baseUrl: flakyUrl, getToken: () => server().token('socket-user'), deviceId, schemaVersion: 1, timeoutMs: 2_000 }) },
    });
    const tablet = await device('socket-user');
    const syncUntilOk = async (d: typeof phone) => {
      for (let n = 0; n < 300; n++) if ((await d.client.sync()).isOk()) return n;
      throw new Error('no sync succeeded in 300 attempts');
    };

    // The tablet's data reaches the phone through the faults, and the phone's edits go back.
    for (let i = 0; i < 30; i++) await tablet.client.local.create('todos', { description: `tablet todo ${i}` });
    await syncUntilOk(tablet);
    proxy.faults = seededFaults(rng, { cut: 0.08, truncate: 0.05, stall: 0.03 });
    let failures = 0;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 15; i++) await phone.client.local.create('captures', { type: 'text', raw_content: `phone ${round}.${i}` });
      const todos = await phone.client.local.query('todos', { orderBy: 'id' });
      for (const t of todos.slice(0, 3)) await phone.client.local.update('todos', t['id'] as string, { state: 'done' });
      failures += await syncUntilOk(phone);
    }
    proxy.faults = () => 'pass';
    await syncUntilOk(phone);
    await syncUntilOk(tablet);

    expect(failures, 'syncs the faults broke').to.be.greaterThan(0);
    expect(await phone.client.local.countPending()).to.equal(0);
    for (const table of ['captures', 'todos']) expect(await deviceRows(phone, table), table).to.deep.equal(await deviceRows(tablet, table));
    expect(await deviceRows(tablet, 'captures')).to.have.length(60);
  });
});
