import { expect } from 'chai';
import { err } from 'neverthrow';
import { networkFailure } from '../../src/domain';
import type { SyncTransport } from '../../mobile/src/ports';
import { checkpointKey } from '../../mobile/src/adapters/async-storage-checkpoints';
import { ManualTimers } from '../fakes/manual-timers';
import { describeEachDatabase } from '../support/databases';
import { deviceRows, openDevice, useDevices, type Device } from '../support/device';
import { startTestServer, storedRows, type TestServer } from '../support/server';

/**
 * The mobile client end to end (issue scenarios 1–11): real clients on OP-SQLite's Node build,
 * each with its own SQLite file, against the real server over HTTP on 127.0.0.1.
 */
describeEachDatabase('mobile client ↔ server', (ctx) => {
  const { device, server: currentServer } = useDevices(ctx);
  let server: TestServer;
  before(() => {
    server = currentServer();
  });
  const serverRows = (table: string, user: string) => storedRows(ctx.database.db, table, user);

  async function syncOk(d: Device) {
    const r = await d.client.sync();
    if (r.isErr()) throw new Error(`sync failed: ${JSON.stringify(r.error)}`);
    return r.value;
  }

  it('1. captures and todos created on device 1 reach device 2 identical', async () => {
    const d1 = await device('u1');
    const d2 = await device('u1');
    await d1.client.local.create('captures', { id: 'c1', type: 'text', raw_content: 'pick up parcel', tags: '["errand"]' });
    await d1.client.local.create('captures', { id: 'c2', type: 'audio', raw_content: 'file:///memo.m4a', duration_ms: 4200 });
    await d1.client.local.create('todos', { id: 't1', description: 'parcel', priority: 'high', deadline: 1_800_000_000_000 });
    await d1.client.local.create('projects', { id: 'p1', name: 'home', archived: true });
    await syncOk(d1);
    await syncOk(d2);
    for (const table of ['captures', 'todos', 'projects']) expect(await deviceRows(d2, table), table).to.deep.equal(await deviceRows(d1, table));
    expect((await deviceRows(d2, 'projects'))[0]).to.include({ archived: true });
    expect(d1.client.getStatus()).to.include({ state: 'idle', pending: 0 });
  });

  it('2. offline writes are not sent; when the network returns the client syncs by itself', async () => {
    const d = await device('u2');
    d.network.setOnline(false);
    d.client.start();
    await d.client.local.create('captures', { id: 'off1', type: 'text', raw_content: 'written on the underground' });
    await d.client.sync();
    expect(d.requests).to.deep.equal([]);
    expect(d.client.getStatus()).to.include({ state: 'offline', pending: 1 });
    expect(await serverRows('captures', 'u2')).to.have.length(0);

    d.network.setOnline(true);
    for (let i = 0; i < 100 && (await serverRows('captures', 'u2')).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await serverRows('captures', 'u2')).map((r: any) => r.id)).to.deep.equal(['off1']);
    await d.client.sync();
    expect(d.client.getStatus()).to.include({ state: 'idle', pending: 0 });
  });

  it('3. a todo edited on the server (priority) and on a device (state) ends per the policy table everywhere', async () => {
    const d1 = await device('u3');
    const d2 = await device('u3');
    await d1.client.local.create('todos', { id: 't', description: 'renew passport', priority: 'low' });
    await syncOk(d1);
    await syncOk(d2);
    // The server re-prioritises (priority is server-owned); device 1, before pulling that,
    // completes the todo and also touches priority.
    await ctx.database.db('todos').where({ user_id: 'u3', id: 't' }).update({ priority: 'high' });
    await d1.client.local.update('todos', 't', { state: 'done', priority: 'medium' });
    await syncOk(d1);
    await syncOk(d2);
    for (const d of [d1, d2]) expect((await d.client.local.get('todos', 't'))).to.include({ state: 'done', priority: 'high' });
    expect(await serverRows('todos', 'u3')).to.have.length(1);
    expect((await serverRows('todos', 'u3'))[0]).to.include({ state: 'done', priority: 'high' });
  });

  it('4. network failures are retried after 1 s, 1 s, 2 s, then succeed, with no duplicate rows', async () => {
    const timers = new ManualTimers();
    let failuresLeft = 3;
    const flaky = (inner: SyncTransport): SyncTransport => ({
      pull: async (p) => (failuresLeft-- > 0 ? err(networkFailure('connection refused')) : inner.pull(p)),
      push: (b) => inner.push(b),
    });
    const d = await device('u4', { wrap: flaky, timers });
    await d.client.local.create('ideas', { id: 'i1', text: 'retry me' });
    d.client.start(); // launch sync: fails
    const delays: number[] = [];
    for (let attempt = 0; attempt < 10 && (await serverRows('ideas', 'u4')).length === 0; attempt++) {
      await waitUntil(() => timers.waiting().some((ms) => ms < 60_000) || d.client.getStatus().state === 'idle');
      const retry = timers.waiting().find((ms) => ms < 60_000); // the 15-minute poll also waits
      if (retry === undefined) break;
      delays.push(retry);
      timers.fire(retry);
      await waitUntil(() => d.client.getStatus().state !== 'syncing');
    }
    expect(delays).to.deep.equal([1000, 1000, 2000]);
    expect((await serverRows('ideas', 'u4')).map((r: any) => r.id)).to.deep.equal(['i1']);
    expect(d.client.getStatus()).to.include({ state: 'idle', pending: 0 });
  });

  it('5. a capture deleted on device 1 disappears from device 2 and is a tombstone on the server', async () => {
    const d1 = await device('u5');
    const d2 = await device('u5');
    await d1.client.local.create('captures', { id: 'gone', type: 'text', raw_content: 'temp' });
    await d1.client.local.create('captures', { id: 'kept', type: 'text', raw_content: 'keep' });
    await syncOk(d1);
    await syncOk(d2);
    expect((await deviceRows(d2, 'captures')).map((r) => r['id'])).to.deep.equal(['gone', 'kept']);
    await d1.client.local.delete('captures', 'gone');
    expect(await d1.client.local.get('captures', 'gone')).to.equal(null);
    await syncOk(d1);
    await syncOk(d2);
    expect((await deviceRows(d2, 'captures')).map((r) => r['id'])).to.deep.equal(['kept']);
    expect((await serverRows('captures', 'u5')).map((r: any) => [r.id, r._status])).to.deep.equal([
      ['gone', 'deleted'],
      ['kept', 'active'],
    ]);
  });

  it('6. a device of user B never receives user A\'s rows', async () => {
    const a = await device('alice6');
    const b = await device('bob6');
    await a.client.local.create('captures', { id: 'shared-id', type: 'text', raw_content: "alice's secret" });
    await a.client.local.create('ideas', { id: 'a-idea', text: 'alice only' });
    await syncOk(a);
    await b.client.local.create('captures', { id: 'shared-id', type: 'text', raw_content: "bob's note" });
    await syncOk(b);
    await syncOk(b);
    expect((await deviceRows(b, 'captures')).map((r) => r['raw_content'])).to.deep.equal(["bob's note"]);
    expect(await deviceRows(b, 'ideas')).to.deep.equal([]);
    await syncOk(a);
    expect((await deviceRows(a, 'captures')).map((r) => r['raw_content'])).to.deep.equal(["alice's secret"]);
  });

  it('7. a sync cut off after 2 pushed batches finishes on reopen, resending the unanswered batch under its push_id, with nothing lost or doubled', async () => {
    let pushes = 0;
    let dead = false;
    // Pushes whose answer the dead app never hears (the batches in flight from the third on).
    const unanswered: Array<() => void> = [];
    const dying = (inner: SyncTransport): SyncTransport => ({
      pull: async (p) => (dead ? err(networkFailure('the process died')) : inner.pull(p)),
      push: async (b) => {
        if (dead) return err(networkFailure('the process died'));
        if (++pushes <= 2) return inner.push(b);
        // The third batch reaches the server, but the app dies before it hears back.
        await inner.push(b);
        await new Promise<void>((r) => unanswered.push(r));
        return err(networkFailure('the process died'));
      },
    });
    // It "died" with a sync in flight: only once the test is over is its answer released and its database closed.
    const first = await openDevice(server, 'u7', { wrap: dying, extra: { batchSize: 10 } });
    try {
      for (let i = 0; i < 45; i++) await first.client.local.create('ideas', { id: `i${String(i).padStart(2, '0')}`, text: `idea ${i}` });
      void first.client.sync(); // never finishes: the process "dies"
      // The third batch was answered by the server (the dead app never hears it).
      await waitUntil(() => unanswered.length > 0);

      const reopened = await device('u7', { file: first.file, storage: first.storage, extra: { batchSize: 10 } });
      await syncOk(reopened);
      // The batch the server applied but never answered goes again as the same body and push_id:
      // the server answers it from its receipt instead of applying it twice.
      const before = first.requests.filter((r) => r.kind === 'push').map((r) => r.body as { push_id: string; changes: unknown });
      const after = reopened.requests.filter((r) => r.kind === 'push').map((r) => r.body as { push_id: string; changes: unknown });
      expect(after[0]).to.deep.equal(before[2]);
      expect(new Set(after.map((b) => b.push_id)).size).to.equal(after.length);
      const rows = await serverRows('ideas', 'u7');
      expect(rows.map((r: any) => r.id)).to.deep.equal(Array.from({ length: 45 }, (_, i) => `i${String(i).padStart(2, '0')}`));
      expect(reopened.client.getStatus().pending).to.equal(0);
      expect(await reopened.client.local.integrityCheck()).to.equal('ok');
      const d2 = await device('u7');
      await syncOk(d2);
      expect(await deviceRows(d2, 'ideas')).to.have.length(45);
    } finally {
      dead = true;
      first.client.stop();
      for (const answer of unanswered) answer();
      await first.client.close();
    }
  });

  it('a push applied but unanswered, then overtaken by another device\'s edit, ends with the later edit on both devices', async () => {
    let dropNextAnswer = false;
    const lossy = (inner: SyncTransport): SyncTransport => ({
      pull: (p) => inner.pull(p),
      push: async (b) => {
        const answer = await inner.push(b);
        if (!dropNextAnswer) return answer;
        dropNextAnswer = false;
        return err(networkFailure('answer lost'));
      },
    });
    const a = await device('u-lost', { wrap: lossy });
    const b = await device('u-lost');
    await a.client.local.create('todos', { id: 't', description: 'v0' });
    await syncOk(a);
    await syncOk(b);
    await a.client.local.update('todos', 't', { description: 'from a (committed, answer lost)' });
    dropNextAnswer = true;
    expect((await a.client.sync()).isErr()).to.equal(true);
    await b.client.local.update('todos', 't', { description: 'from b (later)' });
    await syncOk(b);
    // a must not take b's later edit, pulled next, for older than its own unanswered push.
    await syncOk(a);
    await syncOk(b);
    expect((await serverRows('todos', 'u-lost'))[0]).to.include({ description: 'from b (later)' });
    expect(await a.client.local.get('todos', 't')).to.include({ description: 'from b (later)' });
    expect(await b.client.local.get('todos', 't')).to.include({ description: 'from b (later)' });
    expect(a.client.getStatus().pending).to.equal(0);
  });

  it('a first sync drops rows the device holds from the server that the server has deleted since (no cursor: no deletes are sent)', async () => {
    const a = await device('u-first');
    const b = await device('u-first');
    await b.client.local.create('ideas', { id: 'kept', text: 'kept' });
    await b.client.local.create('ideas', { id: 'gone', text: 'deleted meanwhile' });
    await b.client.local.create('ideas', { id: 'edited', text: 'edited here' });
    await syncOk(b);
    await syncOk(a);
    expect((await deviceRows(a, 'ideas')).map((r) => r['id'])).to.deep.equal(['edited', 'gone', 'kept']);
    await a.client.local.update('ideas', 'edited', { text: 'local edit, not pushed yet' });
    await b.client.local.delete('ideas', 'gone');
    await syncOk(b);
    // As after a first sync cut off before its cursor was saved: the rows are here, the cursor not.
    await a.storage.removeItem('sync_last_pulled_ideas');
    await syncOk(a);
    expect((await deviceRows(a, 'ideas')).map((r) => [r['id'], r['text']])).to.deep.equal([
      ['edited', 'local edit, not pushed yet'],
      ['kept', 'kept'],
    ]);
    expect(a.client.getStatus().pending).to.equal(0);
  });

  it('8. an edit made while its push is in flight is pushed by the next sync, not lost', async () => {
    let editDuringPush: (() => Promise<void>) | null = null;
    const racing = (inner: SyncTransport): SyncTransport => ({
      pull: (p) => inner.pull(p),
      push: async (b) => {
        const answer = inner.push(b);
        if (editDuringPush) {
          const edit = editDuringPush;
          editDuringPush = null;
          await edit();
        }
        return answer;
      },
    });
    const d = await device('u8', { wrap: racing });
    await d.client.local.create('todos', { id: 't', description: 'draft 1' });
    editDuringPush = async () => {
      await d.client.local.update('todos', 't', { description: 'draft 2' });
    };
    await syncOk(d);
    expect((await serverRows('todos', 'u8'))[0]).to.include({ description: 'draft 1' });
    expect(d.client.getStatus().pending).to.equal(1);
    await syncOk(d);
    expect((await serverRows('todos', 'u8'))[0]).to.include({ description: 'draft 2' });
    expect(d.client.getStatus().pending).to.equal(0);
    expect(await d.client.local.get('todos', 't')).to.include({ description: 'draft 2' });
  });

  it('10. a device does not pull back its own 100 pushed records; another device receives all 100', async () => {
    const d1 = await device('u10');
    const d2 = await device('u10');
    for (let i = 0; i < 100; i++) await d1.client.local.create('ideas', { id: `e${i}`, text: `echo ${i}` });
    await syncOk(d1);
    d1.requests.length = 0;
    await syncOk(d1);
    expect(d1.requests.filter((r) => r.kind === 'pull').map((r) => r.records)).to.deep.equal([0, 0, 0, 0, 0]);
    await syncOk(d2);
    expect(await deviceRows(d2, 'ideas')).to.have.length(100);
  });

  it('a device pulling a table from the start again (its cursor gone, its device id kept) gets its own rows back, on every page', async () => {
    // A database lost or recreated gets a new device id (test/e2e/mobile-accounts.test.ts); a
    // cursor cleared while the database stays (a quarantined record discarded, CURSOR_EXPIRED)
    // keeps it: such a first sync must not leave this device's own rows out as their echo.
    const d1 = await device('u12', { extra: { pullLimit: 10 } });
    for (let i = 0; i < 25; i++) await d1.client.local.create('ideas', { id: `own${String(i).padStart(2, '0')}`, text: `mine ${i}` });
    await syncOk(d1);
    await d1.client.close();
    await d1.storage.removeItem(checkpointKey('ideas'));
    const again = await device('u12', { file: d1.file, storage: d1.storage, extra: { pullLimit: 10 } });
    expect(again.client.deviceId).to.equal(d1.client.deviceId);
    await syncOk(again);
    const pulls = again.requests.filter((r) => r.kind === 'pull' && r.records !== undefined);
    expect(pulls.length).to.be.greaterThan(3);
    expect(pulls.reduce((n, r) => n + r.records!, 0)).to.equal(25);
    expect(await deviceRows(again, 'ideas')).to.have.length(25);
  });

  it('11. 1000 records from device 1 reach device 2', async function () {
    this.timeout(60_000);
    const d1 = await device('u11');
    const d2 = await device('u11');
    for (let i = 0; i < 1000; i++) await d1.client.local.create(i % 2 ? 'captures' : 'todos', i % 2 ? { id: `r${i}`, type: 'text', raw_content: `capture ${i}` } : { id: `r${i}`, description: `todo ${i}` });
    const report = await syncOk(d1);
    expect(report.tables['captures']!.pushed + report.tables['todos']!.pushed).to.equal(1000);
    expect(d1.requests.filter((r) => r.kind === 'push')).to.have.length(10);
    await syncOk(d2);
    expect(await deviceRows(d2, 'captures')).to.deep.equal(await deviceRows(d1, 'captures'));
    expect(await deviceRows(d2, 'todos')).to.deep.equal(await deviceRows(d1, 'todos'));
    expect(await deviceRows(d2, 'todos')).to.have.length(500);
  });
});

describeEachDatabase('mobile client: a record the server refuses', (ctx) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db, { SYNC_MAX_RECORD_BYTES: '2000' });
  });
  after(() => server.close());

  it('9. is quarantined with the server\'s reason; the rest of its batch arrives and later syncs are not blocked', async () => {
    const d = await openDevice(server, 'u9');
    try {
      await d.client.local.create('captures', { id: 'ok1', type: 'text', raw_content: 'fine' });
      await d.client.local.create('captures', { id: 'huge', type: 'text', raw_content: 'x'.repeat(5000) });
      await d.client.local.create('captures', { id: 'ok2', type: 'text', raw_content: 'also fine' });
      const first = await d.client.sync();
      expect(first.isOk()).to.equal(true);
      expect(first._unsafeUnwrap().tables['captures']).to.include({ pushed: 2, quarantined: 1 });
      expect((await ctx.database.db('captures').where({ user_id: 'u9' }).orderBy('id')).map((r: any) => r.id)).to.deep.equal(['ok1', 'ok2']);
      const q = await d.client.listQuarantined();
      expect(q.map((r) => [r.table, r.id])).to.deep.equal([['captures', 'huge']]);
      expect(q[0]!.reason).to.match(/over the limit/);
      expect(d.client.getStatus()).to.include({ pending: 0, quarantined: 1 });

      await d.client.local.create('captures', { id: 'ok3', type: 'text', raw_content: 'later' });
      expect((await d.client.sync()).isOk()).to.equal(true);
      expect((await ctx.database.db('captures').where({ user_id: 'u9' })).map((r: any) => r.id).sort()).to.deep.equal(['ok1', 'ok2', 'ok3']);

      // The app fixes the record and retries it.
      await d.client.local.update('captures', 'huge', { raw_content: 'trimmed' });
      await d.client.retryQuarantined('captures', 'huge');
      expect((await d.client.sync()).isOk()).to.equal(true);
      expect(await d.client.listQuarantined()).to.deep.equal([]);
      expect((await storedRows(ctx.database.db, 'captures', 'u9')).find((r) => r.id === 'huge').raw_content).to.equal('trimmed');
    } finally {
      await d.client.close();
    }
  });
});

async function waitUntil(predicate: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
