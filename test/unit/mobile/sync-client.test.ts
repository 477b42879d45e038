import { expect } from 'chai';
import { networkFailure } from '../../../src/domain';
import { START, openClient, type ClientHarness, type HarnessOptions } from './client-harness';

/**
 * When the client syncs (spec §5 triggers: launch, local writes debounced, a 15-minute poll,
 * network regained), that it runs one sync at a time, and what its status shows.
 */
describe('SyncClient triggers and status', () => {
  let h: ClientHarness;
  const open = async (o: HarnessOptions = {}) => (h = await openClient(o));
  afterEach(async () => {
    await h?.close();
  });

  const SECOND = 1000;
  const MINUTE = 60 * SECOND;

  it('syncs at launch: start() pushes what was written before', async () => {
    await open();
    await h.client.local.create('captures', { id: 'c1', type: 'text', raw_content: 'before start' });
    expect(h.transport.calls).to.deep.equal([]);
    h.client.start();
    await h.flush();
    expect(h.serverIds('captures')).to.deep.equal(['c1']);
    expect(h.client.getStatus()).to.include({ state: 'idle', pending: 0, lastSyncedAt: START });
  });

  it('debounces local writes: several writes within debounceMs make one sync, debounceMs after the last', async () => {
    await open({ client: { debounceMs: 2 * SECOND } });
    h.client.start();
    await h.flush();
    const runsAfterLaunch = h.runs();
    for (const id of ['i1', 'i2', 'i3']) {
      await h.client.local.create('ideas', { id, text: id });
      await h.tick(500);
    }
    await h.tick(2 * SECOND - 1 - 500);
    expect(h.runs(), 'synced before the writes settled').to.equal(runsAfterLaunch);
    expect(h.client.getStatus().pending).to.equal(3);
    await h.tick(1);
    expect(h.runs()).to.equal(runsAfterLaunch + 1);
    expect(h.pushes().map((p) => p.ids)).to.deep.equal([['i1', 'i2', 'i3']]);
    expect(h.client.getStatus()).to.include({ state: 'idle', pending: 0 });
  });

  it('runs one sync at a time: calls during a sync share exactly one more run', async () => {
    await open();
    const release = h.hold();
    const first = h.client.sync();
    await h.flush();
    await h.client.local.create('ideas', { id: 'late', text: 'written during the first sync' });
    const second = h.client.sync();
    const third = h.client.sync({ entity: 'ideas' });
    expect(second).to.equal(third);
    expect(second).not.to.equal(first);
    release();
    const results = await Promise.all([first, second, third]);
    expect(results.map((r) => r.isOk())).to.deep.equal([true, true, true]);
    expect(h.runs()).to.equal(2);
    expect(h.transport.maxInFlight).to.equal(1);
    expect(h.serverIds('ideas')).to.deep.equal(['late']);
  });

  it('never runs two syncs at once when a caller syncs again as soon as its sync ends while another call is queued', async () => {
    await open();
    const release = h.hold();
    let again: Promise<unknown> | undefined;
    const first = h.client.sync().then(() => {
      again = h.client.sync();
    });
    await h.flush();
    const queued = h.client.sync();
    release();
    await first;
    await Promise.all([queued, again]);
    expect(h.transport.maxInFlight, 'two syncs ran at the same time').to.equal(1);
  });

  it('sends nothing while offline and shows it; the network coming back starts a sync', async () => {
    await open({ online: false });
    h.client.start();
    await h.client.local.create('captures', { id: 'c1', type: 'text', raw_content: 'on the underground' });
    await h.tick(5 * SECOND);
    const result = await h.client.sync();
    expect(result.isErr() && result.error.kind).to.equal('NETWORK_ERROR');
    expect(h.transport.calls).to.deep.equal([]);
    expect(h.client.getStatus()).to.include({ state: 'offline', pending: 1 });

    h.network.setOnline(true);
    await h.flush();
    expect(h.serverIds('captures')).to.deep.equal(['c1']);
    expect(h.client.getStatus()).to.include({ state: 'idle', pending: 0 });
  });

  it('shows offline, and does not retry, when the network drops during a sync; syncs when it returns', async () => {
    await open();
    await h.client.local.create('ideas', { id: 'i1', text: 'x' });
    h.client.start();
    await h.flush();
    await h.client.local.create('ideas', { id: 'i2', text: 'y' });
    const release = h.hold();
    h.transport.failNext(1, networkFailure('connection lost'));
    const sync = h.client.sync();
    await h.flush();
    h.network.setOnline(false);
    release();
    expect((await sync).isErr()).to.equal(true);
    expect(h.client.getStatus()).to.include({ state: 'offline', pending: 1 });
    const calls = h.transport.calls.length;
    await h.tick(5 * MINUTE);
    expect(h.transport.calls.length, 'retried while offline').to.equal(calls);
    h.network.setOnline(true);
    await h.flush();
    expect(h.serverIds('ideas')).to.deep.equal(['i1', 'i2']);
  });

  it('polls every 15 minutes', async () => {
    await open();
    h.client.start();
    await h.flush();
    expect(h.runs()).to.equal(1);
    await h.tick(15 * MINUTE - 1);
    expect(h.runs()).to.equal(1);
    await h.tick(1);
    expect(h.runs()).to.equal(2);
    await h.tick(15 * MINUTE);
    expect(h.runs()).to.equal(3);
  });

  it('does not sync again for what a sync wrote: pulled rows and pushed rows stamped by the server are not local writes', async () => {
    await open({ client: { debounceMs: SECOND } });
    const other = h.server.connect('u1', { deviceId: 'other-phone', schemaVersion: 1 });
    const pushed = await other.push({ last_pulled_at: null, push_id: 'p-other', changes: { ideas: { created: [{ id: 'from-other', thought_id: null, text: 'x', created_at: 1 }], updated: [], deleted: [] } } });
    expect(pushed.isOk()).to.equal(true);
    await h.client.local.create('ideas', { id: 'mine', text: 'y' });
    const heard: string[] = [];
    h.client.local.onChange((e) => heard.push(`${e.source}:${e.ids?.join(',')}`));
    h.client.start();
    await h.flush();
    expect(heard).to.deep.equal(['pull:from-other', 'pull:mine']);
    await h.tick(10 * SECOND);
    expect(h.runs()).to.equal(1);
  });

  it('stops every trigger on stop()', async () => {
    await open({ client: { debounceMs: SECOND } });
    h.client.start();
    await h.flush();
    h.client.stop();
    await h.client.local.create('ideas', { id: 'i1', text: 'x' });
    h.network.setOnline(false);
    h.network.setOnline(true);
    await h.tick(30 * MINUTE);
    expect(h.runs()).to.equal(1);
    expect(h.serverIds('ideas')).to.deep.equal([]);
  });

  it('publishes idle → syncing → idle with the pending count and the time of the last successful sync', async () => {
    await open();
    await h.client.local.create('todos', { id: 't1', description: 'one' });
    await h.client.local.create('todos', { id: 't2', description: 'two' });
    await h.client.refreshCounts();
    const seen: Array<{ state: string; pending: number; lastSyncedAt: number | null }> = [];
    const stop = h.client.subscribe((s) => seen.push({ state: s.state, pending: s.pending, lastSyncedAt: s.lastSyncedAt }));
    await h.tick(7 * SECOND);
    expect((await h.client.sync()).isOk()).to.equal(true);
    stop();
    const states = seen.map((s) => s.state).filter((s, i, all) => s !== all[i - 1]);
    expect(states).to.deep.equal(['idle', 'syncing', 'idle']);
    expect(seen[0]).to.deep.equal({ state: 'idle', pending: 2, lastSyncedAt: null });
    expect(seen[seen.length - 1]).to.deep.equal({ state: 'idle', pending: 0, lastSyncedAt: START + 7 * SECOND });
  });

  it('keeps the last successful sync time and the pending count through a failure, and shows the error', async () => {
    await open();
    expect((await h.client.sync()).isOk()).to.equal(true);
    await h.tick(MINUTE);
    await h.client.local.create('ideas', { id: 'i1', text: 'x' });
    h.transport.failNext(1, { kind: 'SERVER_ERROR', retryable: false, message: 'storage full', code: 'QUOTA_EXCEEDED', status: 507 });
    await h.client.sync();
    expect(h.client.getStatus()).to.deep.include({ state: 'error', pending: 1, lastSyncedAt: START });
    expect(h.client.getStatus().lastError).to.include({ kind: 'SERVER_ERROR', message: 'storage full' });
  });

  it('refuses a sync of an unknown table at the call', async () => {
    await open();
    expect(() => h.client.sync({ entity: 'notes' })).to.throw(/notes/);
    expect(h.transport.calls).to.deep.equal([]);
  });
});
