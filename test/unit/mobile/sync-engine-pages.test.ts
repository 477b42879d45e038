import { expect } from 'chai';
import { err, ok } from 'neverthrow';
import { AsyncStorageCheckpointStore } from '../../../mobile/src/adapters/async-storage-checkpoints';
import type { ChangeSet } from '../../../src/domain';
import { PUSHES_IN_FLIGHT, SyncEngine } from '../../../mobile/src/sync-engine';
import type { PullParams, PushBody, SyncTransport } from '../../../mobile/src/ports';
import { MemoryAsyncStorage } from '../../fakes/memory-async-storage';
import { openLocal, thrown, type LocalFixture } from './local-fixture';

/**
 * The engine fetches a table's next page while it applies the current one, and nothing else
 * changes: pages are applied and their cursors saved in order, and a page fetched but not applied
 * (its request failed, or threw, while the page before it was applied) is fetched again next run.
 */
describe('SyncEngine: paginated pull with the next page fetched during the apply', () => {
  let f: LocalFixture;
  let checkpoints: AsyncStorageCheckpointStore;
  let events: string[];

  const idea = (id: string, at: number) => ({ id, text: `text ${id}`, thought_id: null, created_at: 1, last_modified_at: at });
  /** Pages of one idea after cursor 100: cursors 101, 102, … `last` (103: three pages). */
  const pageAfter = (since: number | null, last = 103) => {
    const at = (since ?? 100) + 1;
    return { changes: { ideas: { created: [idea(`i${at}`, at)], updated: [], deleted: [] } }, timestamp: at, has_more: at < last };
  };

  beforeEach(async () => {
    f = await openLocal();
    checkpoints = new AsyncStorageCheckpointStore(new MemoryAsyncStorage());
    await checkpoints.setLastPulledAt('ideas', 100);
    events = [];
    // Every applied page is an event, so the order of requests and applies can be read back.
    const apply = f.local.applyPulled.bind(f.local);
    f.local.applyPulled = async (changes: ChangeSet) => {
      const ids = changes['ideas']!.created.map((r) => r['id']).join(',');
      events.push(`apply ${ids} start`);
      const r = await apply(changes);
      events.push(`apply ${ids} end`);
      return r;
    };
  });

  const engine = (pull: (p: PullParams) => ReturnType<SyncTransport['pull']>) =>
    new SyncEngine(f.local, { pull, push: async () => ok({ timestamp: 0, conflicts: [] }) }, checkpoints, () => 'push-1', { batchSize: 100 });

  it("requests the next page before the current one is applied, and applies and checkpoints in order", async () => {
    const cursorsSaved: number[] = [];
    const save = checkpoints.setLastPulledAt.bind(checkpoints);
    checkpoints.setLastPulledAt = async (t, ts) => {
      if (ts !== null) cursorsSaved.push(ts);
      events.push(`cursor ${ts}`);
      return save(t, ts);
    };
    const r = await engine(async (p) => {
      events.push(`request ${p.lastPulledAt}`);
      return ok(pageAfter(p.lastPulledAt));
    }).run({ entity: 'ideas' });
    expect(r.isOk() && r.value.tables['ideas']?.pulled).to.equal(3);
    expect(events).to.deep.equal([
      'request 100',
      'request 101',
      'apply i101 start',
      'apply i101 end',
      'cursor 101',
      'request 102',
      'apply i102 start',
      'apply i102 end',
      'cursor 102',
      'apply i103 start',
      'apply i103 end',
      'cursor 103',
    ]);
    expect(cursorsSaved).to.deep.equal([101, 102, 103]);
    expect((await f.local.query('ideas')).map((r) => r['id'])).to.deep.equal(['i101', 'i102', 'i103']);
  });

  it('returns a failed prefetch after the page before it is applied and saved, and resumes from there', async () => {
    let failSecondPage = true;
    const pull = async (p: PullParams) => {
      if (p.lastPulledAt === 101 && failSecondPage) return err({ kind: 'NETWORK_ERROR' as const, retryable: true, message: 'link down' });
      return ok(pageAfter(p.lastPulledAt));
    };
    const first = await engine(pull).run({ entity: 'ideas' });
    expect(first.isErr() && first.error.message).to.equal('link down');
    expect(await checkpoints.getLastPulledAt('ideas')).to.equal(101);
    failSecondPage = false;
    const requested: Array<number | null> = [];
    const second = await engine(async (p) => {
      requested.push(p.lastPulledAt);
      return pull(p);
    }).run({ entity: 'ideas' });
    expect(second.isOk()).to.equal(true);
    expect(requested).to.deep.equal([101, 102]);
    expect((await f.local.query('ideas')).map((r) => r['id'])).to.deep.equal(['i101', 'i102', 'i103']);
  });

  it('holds a prefetch that throws while a page is applied (no unhandled rejection) and throws it after that page', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const e = await thrown(() =>
        engine(async (p) => {
          // Thrown as the app's process would die here; it lands while page 1 is being applied.
          if (p.lastPulledAt === 101) throw new Error('killed');
          return ok(pageAfter(p.lastPulledAt));
        }).run({ entity: 'ideas' }),
      );
      await new Promise((r) => setImmediate(r));
      expect(e.message).to.equal('killed');
      expect(unhandled).to.deep.equal([]);
      expect(await checkpoints.getLastPulledAt('ideas')).to.equal(101);
      expect((await f.local.query('ideas')).map((r) => r['id'])).to.deep.equal(['i101']);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  /**
   * A transport that tells a page's cursor from its answer's head lets the engine ask for the
   * next page before the current page's body has arrived, with at most one page asked for ahead
   * of the one applied; the body stays the answer, so a head that disagrees with it is not followed.
   */
  describe("the next page asked for on the answer's head", () => {
    const tick = () => new Promise((r) => setImmediate(r));
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 1000 && !done(); i++) await tick();
    };

    it("asks for the next page as soon as the head names its cursor, before the page's body arrives", async () => {
      const bodies = new Map<number | null, () => void>();
      const run = engine((p) => {
        events.push(`request ${p.lastPulledAt}`);
        const page = pageAfter(p.lastPulledAt);
        p.onHead?.({ timestamp: page.timestamp, hasMore: page.has_more });
        return new Promise((resolve) => bodies.set(p.lastPulledAt, () => resolve(ok(page))));
      }).run({ entity: 'ideas' });
      await until(() => events.length === 2);
      // No body has come, and page 2 is asked for already (one ahead of the page being read).
      await tick();
      expect(events).to.deep.equal(['request 100', 'request 101']);
      bodies.get(100)!();
      await until(() => events.length === 5);
      expect(events).to.deep.equal(['request 100', 'request 101', 'apply i101 start', 'apply i101 end', 'request 102']);
      bodies.get(102)!(); // out of order: still applied after page 2
      await tick();
      expect(events).to.have.length(5);
      bodies.get(101)!();
      const r = await run;
      expect(r.isOk() && r.value.tables['ideas']?.pulled).to.equal(3);
      expect(events.slice(5)).to.deep.equal(['apply i102 start', 'apply i102 end', 'apply i103 start', 'apply i103 end']);
      expect(await checkpoints.getLastPulledAt('ideas')).to.equal(103);
    });

    it('never has more than one page asked for ahead of the one it applies', async () => {
      let asked = 0;
      let mostAhead = 0;
      const apply = f.local.applyPulled.bind(f.local);
      let applied = 0;
      f.local.applyPulled = async (changes: ChangeSet) => {
        mostAhead = Math.max(mostAhead, asked - applied - 1);
        await tick(); // a slow apply: heads and bodies keep coming meanwhile
        applied++;
        return apply(changes);
      };
      const r = await engine(async (p) => {
        asked++;
        const page = pageAfter(p.lastPulledAt, 120);
        p.onHead?.({ timestamp: page.timestamp, hasMore: page.has_more });
        return ok(page);
      }).run({ entity: 'ideas' });
      expect(r.isOk() && r.value.tables['ideas']?.pulled).to.equal(20);
      expect(asked).to.equal(20);
      expect(mostAhead).to.equal(1);
    });

    it('does not follow a head that disagrees with its body: the page the body names is asked for', async () => {
      const requested: Array<number | null> = [];
      const r = await engine(async (p) => {
        requested.push(p.lastPulledAt);
        const page = pageAfter(p.lastPulledAt);
        // The head of the first page names a wrong cursor; the body is the answer.
        p.onHead?.(p.lastPulledAt === 100 ? { timestamp: 150, hasMore: true } : { timestamp: page.timestamp, hasMore: page.has_more });
        return ok(page);
      }).run({ entity: 'ideas' });
      expect(r.isOk() && r.value.tables['ideas']?.pulled).to.equal(3);
      expect(requested).to.deep.equal([100, 150, 101, 102]);
      expect((await f.local.query('ideas', { orderBy: 'id' })).map((x) => x['id'])).to.deep.equal(['i101', 'i102', 'i103']);
      expect(await checkpoints.getLastPulledAt('ideas')).to.equal(103);
    });
  });
});

/**
 * A first sync (no cursor) ends by dropping the rows the device holds from the server that no
 * page brought (the server deleted them meanwhile). A table with no server-stamped row before the
 * pull, a fresh device's, cannot hold such a row, so the sweep is skipped there.
 */
describe('SyncEngine: the first sync sweeps unseen rows only where the table held synced rows', () => {
  let f: LocalFixture;
  let sweeps: number;
  const idea = (id: string, at: number) => ({ id, text: `text ${id}`, thought_id: null, created_at: 1, last_modified_at: at });
  const onePage = { changes: { ideas: { created: [idea('a', 5)], updated: [], deleted: [] } }, timestamp: 5, has_more: false };

  beforeEach(async () => {
    f = await openLocal();
    sweeps = 0;
    const drop = f.local.dropUnseenSynced.bind(f.local);
    f.local.dropUnseenSynced = async (t, seen) => {
      sweeps++;
      return drop(t, seen);
    };
  });

  const firstSync = () =>
    new SyncEngine(f.local, { pull: async () => ok(onePage), push: async () => ok({ timestamp: 0, conflicts: [] }) }, new AsyncStorageCheckpointStore(new MemoryAsyncStorage()), () => 'push-1', { batchSize: 100 }).run({ entity: 'ideas' });

  it('skips the sweep on a device with no synced row (a local, never pushed row does not count)', async () => {
    await f.local.create('ideas', { id: 'local', text: 'not pushed yet' });
    expect(await f.local.hasSyncedRows('ideas')).to.equal(false);
    expect((await firstSync()).isOk()).to.equal(true);
    expect(sweeps).to.equal(0);
    expect((await f.local.query('ideas', { orderBy: 'id' })).map((r) => r['id'])).to.deep.equal(['a', 'local']);
  });

  it('sweeps where the table held a synced row, and drops it when no page brought it', async () => {
    await f.local.applyPulled({ ideas: { created: [idea('stale', 3)], updated: [], deleted: [] } });
    expect(await f.local.hasSyncedRows('ideas')).to.equal(true);
    const r = await firstSync();
    expect(r.isOk() && r.value.tables['ideas']?.pulled).to.equal(2);
    expect(sweeps).to.equal(1);
    expect((await f.local.query('ideas', { orderBy: 'id' })).map((r) => r['id'])).to.deep.equal(['a']);
  });
});

/**
 * A table's next push batch is read from the local database while the batch before it is in
 * flight; an edit made after a batch was read is not lost: it stays pending for the next sync.
 */
describe('SyncEngine: push batches in flight together', () => {
  let f: LocalFixture;
  let checkpoints: AsyncStorageCheckpointStore;
  let pushIds = 0;
  beforeEach(async () => {
    f = await openLocal();
    checkpoints = new AsyncStorageCheckpointStore(new MemoryAsyncStorage());
    pushIds = 0;
  });

  const emptyPull = async () => ok({ changes: { ideas: { created: [], updated: [], deleted: [] } }, timestamp: 10, has_more: false });
  const idsOf = (body: PushBody) => (body.changes['ideas']!.created as Array<Record<string, unknown>>).map((r) => String(r['id']));
  const pending = async () => (await f.local.pendingBatch('ideas', 0, 100)).map((x) => String(x.record['id']));
  const slots = async () => [await checkpoints.getPushAttempt('ideas', 0), await checkpoints.getPushAttempt('ideas', 1)];
  const engine = (push: SyncTransport['push'], batchSize = 1) => new SyncEngine(f.local, { pull: emptyPull, push }, checkpoints, () => `push-${++pushIds}`, { batchSize });

  it(`sends batch 2 before batch 1 is answered, never more than ${PUSHES_IN_FLIGHT} at once, and a row of batch 2 edited meanwhile stays pending`, async () => {
    const events: string[] = [];
    const read = f.local.pendingBatch.bind(f.local);
    f.local.pendingBatch = async (t, after, limit) => {
      const rows = await read(t, after, limit);
      events.push(`read ${rows.map((r) => r.record['id']).join(',') || 'none'}`);
      return rows;
    };
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) await f.local.create('ideas', { id, text: `text ${id}` });
    const sent: Array<Record<string, unknown>> = [];
    let inFlight = 0;
    let most = 0;
    const r = await engine(async (body) => {
      const ids = idsOf(body).join(',');
      most = Math.max(most, ++inFlight);
      events.push(`push ${ids}`);
      sent.push(...(body.changes['ideas']!.created as Array<Record<string, unknown>>));
      // While a,b is in flight (c,d already sent), the app edits a row of c,d.
      if (ids === 'a,b') await f.local.update('ideas', 'c', { text: 'edited in flight' });
      for (let i = 0; i < 3; i++) await new Promise((done) => setImmediate(done));
      events.push(`answer ${ids}`);
      inFlight--;
      return ok({ timestamp: 20, conflicts: [] });
    }, 2).run({ entity: 'ideas' });
    expect(r.isOk() && r.value.tables['ideas']?.pushed).to.equal(6);
    expect(events.indexOf('push c,d'), 'c,d sent before a,b was answered').to.be.below(events.indexOf('answer a,b'));
    expect(most).to.equal(PUSHES_IN_FLIGHT);
    expect(sent.find((x) => x['id'] === 'c')!['text']).to.equal('text c');
    // The edit was not marked clean with the batch that carried the older value.
    expect(await pending()).to.deep.equal(['c']);
    expect(await slots(), 'every attempt settled').to.deep.equal([null, null]);
  });

  it('keeps each unanswered batch\'s attempt in a slot of its own, pushes both before pulling on the next run, with the same push_ids', async () => {
    for (const id of ['a', 'b']) await f.local.create('ideas', { id, text: id });
    const first: PushBody[] = [];
    const lost = await engine(async (body) => {
      first.push(body);
      for (let i = 0; i < 3; i++) await new Promise((done) => setImmediate(done));
      return err({ kind: 'TIMEOUT' as const, retryable: true, message: 'no answer' });
    }).run({ entity: 'ideas' });
    expect(lost.isErr() && lost.error.message).to.equal('no answer');
    expect(first.map(idsOf)).to.deep.equal([['a'], ['b']]);
    const kept = await slots();
    expect(kept.map((a) => a?.pushId).sort()).to.deep.equal(first.map((b) => b.push_id).sort());
    const order: string[] = [];
    const replayed: PushBody[] = [];
    const e = new SyncEngine(
      f.local,
      {
        pull: async () => {
          order.push('pull');
          return emptyPull();
        },
        push: async (body) => {
          order.push('push');
          replayed.push(body);
          return ok({ timestamp: 30, conflicts: [] });
        },
      },
      checkpoints,
      () => `push-${++pushIds}`,
      { batchSize: 1 },
    );
    expect((await e.run({ entity: 'ideas' })).isOk()).to.equal(true);
    expect(order).to.deep.equal(['push', 'push', 'pull']);
    expect(replayed.map((b) => [idsOf(b), b.push_id])).to.deep.equal(first.map((b) => [idsOf(b), b.push_id]));
    expect(await pending()).to.deep.equal([]);
    expect(await slots()).to.deep.equal([null, null]);
  });

  for (const failure of ['fails', 'throws'] as const) {
    it(`when a batch ${failure} while the next is in flight, the run ends after that one (marked pushed), with no unhandled rejection; the next run replays the first with its push_id`, async () => {
      for (const id of ['a', 'b', 'c']) await f.local.create('ideas', { id, text: id });
      const unhandled: unknown[] = [];
      const onUnhandled = (e: unknown) => unhandled.push(e);
      process.on('unhandledRejection', onUnhandled);
      try {
        const calls: string[] = [];
        const run = engine(async (body) => {
          const id = idsOf(body)[0]!;
          calls.push(`push ${id}`);
          if (id === 'a') {
            // After b was sent: a fails while b is in flight.
            await new Promise((done) => setImmediate(done));
            if (failure === 'throws') throw new Error('killed');
            return err({ kind: 'NETWORK_ERROR' as const, retryable: true, message: 'link down' });
          }
          for (let i = 0; i < 3; i++) await new Promise((done) => setImmediate(done));
          calls.push(`answer ${id}`);
          return ok({ timestamp: 40, conflicts: [] });
        }).run({ entity: 'ideas' });
        if (failure === 'throws') expect((await thrown(() => run)).message).to.equal('killed');
        else expect((await run).isErr()).to.equal(true);
        // b was in flight with a: it finished before the run ended; c was never sent.
        expect(calls).to.deep.equal(['push a', 'push b', 'answer b']);
        expect(await pending()).to.deep.equal(['a', 'c']);
        const kept = (await slots()).filter((a) => a !== null);
        expect(kept.map((a) => a!.pushId), "only a's attempt is kept").to.deep.equal(['push-1']);
        // The next run settles a with the same push_id, then c.
        const next: PushBody[] = [];
        const again = await engine(async (body) => {
          next.push(body);
          return ok({ timestamp: 50, conflicts: [] });
        }).run({ entity: 'ideas' });
        expect(again.isOk()).to.equal(true);
        expect(next.map((b) => [idsOf(b)[0], b.push_id])).to.deep.equal([
          ['a', 'push-1'],
          ['c', 'push-3'],
        ]);
        expect(await pending()).to.deep.equal([]);
        await new Promise((r) => setImmediate(r));
        expect(unhandled).to.deep.equal([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });
  }
});
