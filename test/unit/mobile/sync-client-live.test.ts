import { expect } from 'chai';
import { FakeAppState } from '../../fakes/fake-app-state';
import { FakeLiveTransport } from '../../fakes/fake-live-transport';
import { openClient, type ClientHarness, type HarnessOptions } from './client-harness';

/**
 * Live sync on the client (docs/mobile.md, "Live sync"): the channel is open while foreground and
 * online, a poke newer than the device's cursor and not its own echo starts a sync, a poke during
 * a sync makes exactly one more, and the channel reconnects with backoff and jitter.
 */
describe('SyncClient live channel', () => {
  let h: ClientHarness;
  let live: FakeLiveTransport;
  let app: FakeAppState;
  const POKE_MS = 50;
  const open = async (o: HarnessOptions = {}) => {
    live = new FakeLiveTransport();
    app = new FakeAppState(true);
    h = await openClient({ ...o, client: { live: { transport: () => live, appState: app, pokeDelayMs: POKE_MS, random: () => 0.5 }, ...o.client } });
    h.client.start();
    await h.flush();
    await h.tick(0);
    return h;
  };
  afterEach(async () => {
    await h?.close();
  });

  /** The server's mark after another device wrote (a row pushed straight into the in-process server). */
  async function otherDeviceWrites(id: string): Promise<number> {
    const other = h.server.connect('u1', { deviceId: 'other', schemaVersion: 1 });
    const r = await other.push({ push_id: `p-${id}`, last_pulled_at: null, changes: { ideas: { created: [{ id, text: id, created_at: 1 }], updated: [], deleted: [] } } });
    return r._unsafeUnwrap().timestamp;
  }

  it('opens the channel at start and shows live once it is accepted', async () => {
    await open();
    expect(live.openCount()).to.equal(1);
    expect(h.client.getStatus().live).to.equal(false);
    live.current()!.handlers.onOpen();
    expect(h.client.getStatus().live).to.equal(true);
  });

  it("syncs soon after another device's poke: the row arrives without any other trigger", async () => {
    await open();
    live.current()!.handlers.onOpen();
    const runs = h.runs();
    const mark = await otherDeviceWrites('from-other');
    live.current()!.handlers.onChange(mark, 'other');
    await h.flush();
    await h.tick(POKE_MS);
    expect(h.runs()).to.equal(runs + 1);
    expect((await h.client.local.query('ideas')).map((r) => r['id'])).to.deep.equal(['from-other']);
  });

  it('ignores its own echo, and a poke not newer than what it pulled', async () => {
    await open();
    live.current()!.handlers.onOpen();
    const runs = h.runs();
    live.current()!.handlers.onChange(Number.MAX_SAFE_INTEGER, h.client.deviceId);
    const known = (await h.client.knownMark())!;
    expect(known).to.be.a('number');
    live.current()!.handlers.onChange(known, 'other');
    await h.flush();
    await h.tick(POKE_MS * 10);
    expect(h.runs()).to.equal(runs);
  });

  it('a poke during a sync leads to exactly one more sync, however many pokes come', async () => {
    await open();
    live.current()!.handlers.onOpen();
    const runs = h.runs();
    const release = h.hold();
    const running = h.client.sync();
    await h.flush();
    for (let i = 0; i < 20; i++) {
      const mark = await otherDeviceWrites(`burst${i}`);
      live.current()!.handlers.onChange(mark, 'other');
      await h.flush();
      await h.tick(POKE_MS);
    }
    release();
    await running;
    await h.tick(POKE_MS);
    await h.tick(POKE_MS);
    expect(h.runs()).to.equal(runs + 2);
    expect(h.transport.maxInFlight).to.equal(1);
    expect(await h.client.local.query('ideas')).to.have.length(20);
  });

  it('closes the channel in the background and offline; reopens in the foreground and catches up with one sync', async () => {
    await open();
    live.current()!.handlers.onOpen();
    app.set(false);
    expect(live.openCount()).to.equal(0);
    expect(h.client.getStatus().live).to.equal(false);
    const runs = h.runs();
    app.set(true);
    expect(live.openCount()).to.equal(1);
    live.current()!.handlers.onOpen();
    await h.tick(POKE_MS);
    expect(h.runs(), 'pokes missed in the background: one sync on return').to.equal(runs + 1);
    h.network.setOnline(false);
    expect(live.openCount()).to.equal(0);
    h.network.setOnline(true);
    expect(live.openCount()).to.equal(1);
  });

  it('reconnects with growing, jittered delays after failures, and at once (with jitter) after TOKEN_EXPIRED', async () => {
    await open();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = Date.now();
      live.end('NETWORK');
      expect(live.openCount()).to.equal(0);
      // Advance until the next connect.
      const count = live.connections.length;
      let waited = 0;
      while (live.connections.length === count) {
        await h.tick(250);
        waited += 250;
        if (waited > 120_000) throw new Error('no reconnect');
      }
      delays.push(Date.now() - before);
    }
    // Fibonacci seconds × 0.75 (random fixed at 0.5): 0.75, 0.75, 1.5, 2.25 s (to the tick).
    expect(delays).to.deep.equal([750, 750, 1500, 2250]);
    live.current()!.handlers.onOpen();
    live.end('TOKEN_EXPIRED');
    const count = live.connections.length;
    await h.tick(750);
    expect(live.connections.length).to.equal(count + 1);
  });

  it('stop() closes the channel and no reconnect follows', async () => {
    await open();
    live.end('NETWORK');
    h.client.stop();
    await h.tick(120_000);
    expect(live.openCount()).to.equal(0);
    expect(live.connections).to.have.length(1);
  });
});
