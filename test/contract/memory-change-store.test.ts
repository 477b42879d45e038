import { expect } from 'chai';
import { tableSpec } from '../../src/domain';
import { MemoryChangeStore } from '../fakes/memory-change-store';
import { until } from '../support/until';
import { runChangeStoreContract } from './change-store.contract';

runChangeStoreContract('MemoryChangeStore', async () => {
  const store = new MemoryChangeStore(() => 1_000);
  return {
    store,
    conflicts: async (userId) => store.conflictsOf(userId),
    purgeTombstones: async (beforeMs) => void store.purgeTombstones(beforeMs),
    blocked: () => until(async () => store.waiting > 0),
  };
});

describe('MemoryChangeStore stamps', () => {
  const ideas = tableSpec('ideas')!;
  const row = (id: string) => ({ id, values: { thought_id: null, text: id, created_at: 1 }, deleted: false });

  it('takes max(now, previous + 1) from the injected clock', async () => {
    let now = 5_000;
    const store = new MemoryChangeStore(() => now);
    await store.inPushTransaction('u1', (tx) => tx.writeRows(ideas, [row('a'), row('b')], null));
    now = 4_000; // the clock went backwards: stamps still move forward
    await store.inPushTransaction('u1', (tx) => tx.writeRows(ideas, [row('c')], null));
    now = 9_000;
    await store.inPushTransaction('u1', (tx) => tx.writeRows(ideas, [row('d')], null));
    const page = (await store.pullPage('u1', { since: null, tables: [ideas], fullTables: new Set(), limit: 10, excludeDevice: null }))._unsafeUnwrap();
    expect(page.rows.map((r) => [r.values['id'], r.lastModifiedAt])).to.deep.equal([
      ['a', 5_000],
      ['b', 5_001],
      ['c', 5_002],
      ['d', 9_000],
    ]);
    expect(page.highWater).to.equal(9_000);
  });

  it('keeps a stamp counter per user', async () => {
    const store = new MemoryChangeStore(() => 100);
    await store.inPushTransaction('u1', (tx) => tx.writeRows(ideas, [row('a'), row('b')], null));
    await store.inPushTransaction('u2', (tx) => tx.writeRows(ideas, [row('a')], null));
    const page = (await store.pullPage('u2', { since: null, tables: [ideas], fullTables: new Set(), limit: 10, excludeDevice: null }))._unsafeUnwrap();
    expect(page.rows.map((r) => r.lastModifiedAt)).to.deep.equal([100]);
  });

  it('refuses a row without created_at, failing the whole transaction', async () => {
    const store = new MemoryChangeStore(() => 100);
    const result = await store.inPushTransaction('u1', (tx) =>
      tx.writeRows(ideas, [row('a')], null).andThen(() => tx.writeRows(ideas, [{ id: 'b', values: { text: 'b' }, deleted: false }], null)),
    );
    expect(result._unsafeUnwrapErr().code).to.equal('INTERNAL');
    expect((await store.pullPage('u1', { since: null, tables: [ideas], fullTables: new Set(), limit: 10, excludeDevice: null }))._unsafeUnwrap().rows).to.deep.equal([]);
  });
});
