import { expect } from 'chai';
import { StrictMode, act, createElement, type ReactElement } from 'react';
import TestRenderer, { type ReactTestRenderer } from 'react-test-renderer';
import { SyncProvider, useQuery, useRecord, useSyncStatus, type QueryResult, type RecordResult } from '../../mobile/src/react';
import type { SyncClient, SyncStatus } from '../../mobile/src/sync-client';
import { describeEachDatabase } from '../support/databases';
import { useDevices, type Device } from '../support/device';

/**
 * The React bindings with real React (react-test-renderer) over real clients on SQLite files
 * syncing with the real server over HTTP: what re-renders, and what does not, when this device
 * writes and when a sync pulls another device's writes.
 */

declare global {
  // React's switch for act() warnings (testing environments set it).
  var IS_REACT_ACT_ENVIRONMENT: boolean | undefined;
}

/** Every value a probe component rendered, and a way to wait for the render that shows something. */
class Renders<T> {
  readonly values: T[] = [];
  private readonly waiters: Array<{ test: (v: T) => boolean; resolve: (v: T) => void }> = [];

  readonly record = (v: T): void => {
    this.values.push(v);
    for (const w of [...this.waiters]) {
      if (!w.test(v)) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(v);
    }
  };

  get count(): number {
    return this.values.length;
  }

  get last(): T {
    if (this.values.length === 0) throw new Error('never rendered');
    return this.values[this.values.length - 1]!;
  }

  /** The latest render if it already shows `test`, else the next render that does (failing after `ms`). */
  until(test: (v: T) => boolean, what: string, ms = 15_000): Promise<T> {
    if (this.values.length > 0 && test(this.last)) return Promise.resolve(this.last);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no render showed ${what} within ${ms} ms; last: ${JSON.stringify(this.values.at(-1))}`)), ms);
      this.waiters.push({ test, resolve: (v) => (clearTimeout(timer), resolve(v)) });
    });
  }
}

/** Calls a hook each render and records what it returned. */
function Probe<T>({ use, renders }: { use: () => T; renders: Renders<T> }): null {
  renders.record(use());
  return null;
}
const probe = <T,>(use: () => T, renders: Renders<T>, key: string): ReactElement => createElement(Probe<T>, { use, renders, key });

const ids = (r: QueryResult) => r.records.map((x) => x['id']);
const loaded = (r: { loading: boolean }) => !r.loading;

describeEachDatabase('React hooks over a syncing client', (ctx) => {
  const { device } = useDevices(ctx);
  let renderer: ReactTestRenderer | null = null;

  // act() for mounting and unmounting; in between, the hooks' updates come from the database's
  // events at times of their own, and React schedules them as in an app (as testing libraries do
  // while they wait).
  async function mount(client: SyncClient, children: ReactElement[], strict = false): Promise<void> {
    const tree = createElement(SyncProvider, { client }, ...children);
    globalThis.IS_REACT_ACT_ENVIRONMENT = true;
    // React 19 says on every create that this renderer is deprecated: the one line is left out.
    const consoleError = console.error;
    console.error = (...args: unknown[]) => {
      if (!String(args[0]).startsWith('react-test-renderer is deprecated')) consoleError(...args);
    };
    try {
      await act(async () => {
        renderer = TestRenderer.create(strict ? createElement(StrictMode, null, tree) : tree);
      });
    } finally {
      console.error = consoleError;
      globalThis.IS_REACT_ACT_ENVIRONMENT = false;
    }
  }
  async function unmount(): Promise<void> {
    if (!renderer) return;
    const r = renderer;
    renderer = null;
    globalThis.IS_REACT_ACT_ENVIRONMENT = true;
    try {
      await act(async () => r.unmount());
    } finally {
      globalThis.IS_REACT_ACT_ENVIRONMENT = false;
    }
  }
  afterEach(unmount);
  after(() => {
    delete globalThis.IS_REACT_ACT_ENVIRONMENT;
  });

  async function syncOk(d: Device): Promise<void> {
    const r = await d.client.sync();
    if (r.isErr()) throw new Error(`sync failed: ${JSON.stringify(r.error)}`);
  }

  /** Every read the hooks make of `d`'s database, to wait until the ones under way have ended. */
  function countReads(d: Device): { readonly started: () => number; settled: () => Promise<void> } {
    const reads: Array<Promise<unknown>> = [];
    const local = d.client.local;
    const query = local.query.bind(local);
    const get = local.get.bind(local);
    local.query = (...args) => {
      const p = query(...args);
      reads.push(p);
      return p;
    };
    local.get = (...args) => {
      const p = get(...args);
      reads.push(p);
      return p;
    };
    return {
      started: () => reads.length,
      // After the reads: the stores' own continuations (queued before this one) have run, and
      // with them any render they caused (the test renderer's root renders a store update at once).
      settled: async () => {
        await Promise.allSettled(reads);
        await new Promise((r) => setImmediate(r));
      },
    };
  }

  it("device 2's useQuery('captures') re-renders once with device 1's captures after device 2 syncs; useQuery('todos') and a query they do not match do not re-render", async () => {
    const d1 = await device('rh1');
    const d2 = await device('rh1');
    const captures = new Renders<QueryResult>();
    const todos = new Renders<QueryResult>();
    const audio = new Renders<QueryResult>();
    await mount(d2.client, [
      probe(() => useQuery('captures', { orderBy: 'id' }), captures, 'captures'),
      probe(() => useQuery('todos'), todos, 'todos'),
      probe(() => useQuery('captures', { where: { type: 'audio' } }), audio, 'audio'),
    ]);
    await Promise.all([captures.until(loaded, 'captures loaded'), todos.until(loaded, 'todos loaded'), audio.until(loaded, 'audio loaded')]);
    const reads = countReads(d2);
    const before = { captures: captures.count, todos: todos.count, audio: audio.count, audioRecords: audio.last.records };

    await d1.client.local.create('captures', { id: 'c1', type: 'text', raw_content: 'pick up parcel' });
    await d1.client.local.create('captures', { id: 'c2', type: 'text', raw_content: 'call the bank' });
    await syncOk(d1);
    expect(captures.count, 'nothing pulled yet').to.equal(before.captures);
    await syncOk(d2);
    await captures.until((r) => ids(r).length === 2, "device 1's captures");
    await reads.settled();

    expect(ids(captures.last)).to.deep.equal(['c1', 'c2']);
    expect(captures.last.records[0]).to.include({ raw_content: 'pick up parcel', type: 'text' });
    // One pulled page of two rows: one read, one render.
    expect(captures.count - before.captures, 'captures renders').to.equal(1);
    expect(todos.count, 'todos renders').to.equal(before.todos);
    // The audio query read again (its table changed) but found the same rows: no render, same array.
    expect(reads.started(), 'reads (captures and audio)').to.equal(2);
    expect(audio.count, 'audio renders').to.equal(before.audio);
    expect(audio.last.records).to.equal(before.audioRecords);
  });

  it('re-renders on a local write, with the status showing it pending', async () => {
    const d = await device('rh2');
    const captures = new Renders<QueryResult>();
    const status = new Renders<SyncStatus>();
    await mount(d.client, [probe(() => useQuery('captures'), captures, 'q'), probe(useSyncStatus, status, 's')]);
    await captures.until(loaded, 'loaded');
    const n = captures.count;
    await d.client.local.create('captures', { id: 'mine', type: 'text', raw_content: 'written here' });
    await captures.until((r) => ids(r).includes('mine'), 'the new capture');
    expect(captures.count - n).to.equal(1);
    await status.until((s) => s.pending === 1, 'one pending');
    await d.client.local.update('captures', 'mine', { raw_content: 'edited here' });
    await captures.until((r) => r.records[0]?.['raw_content'] === 'edited here', 'the edit');
    await d.client.local.delete('captures', 'mine');
    await captures.until((r) => r.records.length === 0, 'the delete');
  });

  it('useRecord re-renders on a pulled update of its row, not of another row, and shows a pulled delete', async () => {
    const d1 = await device('rh3');
    const d2 = await device('rh3');
    await d1.client.local.create('captures', { id: 'a', type: 'text', raw_content: 'a1' });
    await d1.client.local.create('captures', { id: 'b', type: 'text', raw_content: 'b1' });
    await syncOk(d1);
    await syncOk(d2);
    const a = new Renders<RecordResult>();
    const b = new Renders<RecordResult>();
    const none = new Renders<RecordResult>();
    await mount(d2.client, [probe(() => useRecord('captures', 'a'), a, 'a'), probe(() => useRecord('captures', 'b'), b, 'b'), probe(() => useRecord('captures', null), none, 'none')]);
    await a.until((r) => r.record?.['raw_content'] === 'a1', 'a loaded');
    await b.until((r) => r.record?.['raw_content'] === 'b1', 'b loaded');
    expect(none.last).to.deep.equal({ record: null, loading: false, error: null });
    const reads = countReads(d2);
    const bRenders = b.count;
    const aRenders = a.count;

    await d1.client.local.update('captures', 'a', { raw_content: 'a2' });
    await syncOk(d1);
    await syncOk(d2);
    await a.until((r) => r.record?.['raw_content'] === 'a2', "a's pulled update");
    await reads.settled();
    expect(a.count - aRenders).to.equal(1);
    expect(b.count, "b's renders").to.equal(bRenders);
    expect(reads.started(), 'only a was read again').to.equal(1);

    await d1.client.local.delete('captures', 'a');
    await syncOk(d1);
    await syncOk(d2);
    await a.until((r) => r.record === null, "a's pulled delete");
    expect(b.count, "b's renders").to.equal(bRenders);
    expect(b.last.record).to.include({ id: 'b', raw_content: 'b1' });
  });

  it('useSyncStatus follows syncing → idle and the pending count', async () => {
    const d = await device('rh4');
    const status = new Renders<SyncStatus>();
    await mount(d.client, [probe(useSyncStatus, status, 's')]);
    expect(status.last).to.include({ state: 'idle', pending: 0, lastSyncedAt: null });
    await d.client.local.create('ideas', { id: 'i1', text: 'one' });
    await d.client.local.create('ideas', { id: 'i2', text: 'two' });
    await status.until((s) => s.pending === 2, 'two pending');
    const from = status.count;
    const done = status.until((s) => s.state === 'idle' && s.pending === 0 && s.lastSyncedAt !== null, 'idle, nothing pending');
    await syncOk(d);
    await done;
    const states = status.values.slice(from).map((s) => s.state);
    expect(states[0]).to.equal('syncing');
    expect(states.at(-1)).to.equal('idle');
    expect(status.values.slice(from).filter((s) => s.state === 'syncing').every((s) => s.pending === 2)).to.equal(true);
  });

  it('shows a failed query as an error, not as rows', async () => {
    const d = await device('rh5');
    const bad = new Renders<QueryResult>();
    await mount(d.client, [probe(() => useQuery('captures', { orderBy: 'no_such_column' }), bad, 'bad')]);
    const r = await bad.until(loaded, 'the read ended');
    expect(r.records).to.deep.equal([]);
    expect(r.error?.message).to.match(/unknown column no_such_column/);
  });

  it('unmounting unsubscribes every hook: no listener is left on the database or the client (under StrictMode too)', async () => {
    const d = await device('rh6');
    const local = d.client.local;
    const onChange = local.onChange.bind(local);
    const subscribe = d.client.subscribe.bind(d.client);
    let changeListeners = 0;
    let statusListeners = 0;
    local.onChange = (l) => {
      changeListeners++;
      const off = onChange(l);
      return () => {
        changeListeners--;
        off();
      };
    };
    d.client.subscribe = (l) => {
      statusListeners++;
      const off = subscribe(l);
      return () => {
        statusListeners--;
        off();
      };
    };
    const q = new Renders<QueryResult>();
    const rec = new Renders<RecordResult>();
    const s = new Renders<SyncStatus>();
    await mount(d.client, [probe(() => useQuery('ideas'), q, 'q'), probe(() => useRecord('ideas', 'i1'), rec, 'r'), probe(useSyncStatus, s, 's')], true);
    await q.until(loaded, 'query loaded');
    await rec.until(loaded, 'record loaded');
    expect([changeListeners, statusListeners]).to.deep.equal([2, 1]);
    await d.client.local.create('ideas', { id: 'i1', text: 'x' });
    await rec.until((r) => r.record !== null, 'the record');
    await unmount();
    expect([changeListeners, statusListeners]).to.deep.equal([0, 0]);
    const renders = [q.count, rec.count, s.count];
    const reads = countReads(d);
    await d.client.local.update('ideas', 'i1', { text: 'after unmount' });
    await reads.settled();
    // The one read is update()'s own read-back of the row it wrote.
    expect([q.count, rec.count, s.count, reads.started()]).to.deep.equal([...renders, 1]);
  });
});
