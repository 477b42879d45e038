import { expect } from 'chai';
import type { WireRecord } from '../../../src/domain';
import { QueryStore, RecordStore, sameRow } from '../../../mobile/src/react/stores';
import { openLocal, type LocalFixture } from './local-fixture';

/**
 * The stores under the React hooks, over a real LocalDatabase (OP-SQLite in memory): when they
 * read, how events are batched, and when they publish. The database's reads are held at a gate
 * where a test needs a read to be under way.
 */
describe('React hook stores', () => {
  let f: LocalFixture;
  /** Reads the stores started, in order; each resolves when the test opens the gate (if closed). */
  let reads: string[];
  let gate: { promise: Promise<void>; open: () => void } | null;
  beforeEach(async () => {
    f = await openLocal();
    reads = [];
    gate = null;
    const local = f.local;
    const query = local.query.bind(local);
    const get = local.get.bind(local);
    const held = async <T>(what: string, read: () => Promise<T>): Promise<T> => {
      reads.push(what);
      if (gate) await gate.promise;
      return read();
    };
    local.query = (table, options) => held(`query ${table}`, () => query(table, options));
    local.get = (table, id) => held(`get ${table} ${id}`, () => get(table, id));
  });
  afterEach(() => f.driver.close());

  function closeGate(): void {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    gate = { promise, open };
  }
  function openGate(): void {
    gate?.open();
    gate = null;
  }
  /** Resolves on the store's next publication. */
  const published = (store: { subscribe: (l: () => void) => () => void }) =>
    new Promise<void>((resolve) => {
      const off = store.subscribe(() => {
        off();
        resolve();
      });
    });
  /** Lets the stores' pending reads and their continuations run (the database is in memory). */
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };

  it('reads when first subscribed, publishes the rows once, and not again for an equal result', async () => {
    await f.local.create('ideas', { id: 'i1', text: 'one' });
    const store = new QueryStore(f.local, 'ideas', { orderBy: 'id' });
    expect(store.getSnapshot()).to.deep.equal({ records: [], loading: true, error: null });
    expect(reads).to.deep.equal([]);
    let publications = 0;
    const first = published(store);
    const off = store.subscribe(() => publications++);
    await first;
    const snapshot = store.getSnapshot();
    expect(snapshot.loading).to.equal(false);
    expect(snapshot.records.map((r) => r['id'])).to.deep.equal(['i1']);
    // A change to another row of the table: read again, same rows, nothing published.
    await f.local.create('todos', { id: 't1', description: 'other table: not even read' });
    await f.local.delete('ideas', 'nope');
    await f.local.applyPulled({ ideas: { created: [], updated: [], deleted: ['not-here'] } });
    await settle();
    expect(reads).to.deep.equal(['query ideas', 'query ideas']);
    expect(store.getSnapshot()).to.equal(snapshot);
    expect(publications).to.equal(1);
    off();
  });

  it('makes exactly one more read for every event heard during a read, however many', async () => {
    const store = new QueryStore(f.local, 'ideas', { orderBy: 'id' });
    const loaded = published(store);
    const off = store.subscribe(() => undefined);
    await loaded;
    closeGate();
    await f.local.create('ideas', { id: 'a', text: 'a' }); // starts a read, held at the gate
    await settle();
    expect(reads).to.have.length(2);
    for (const id of ['b', 'c', 'd', 'e']) await f.local.create('ideas', { id, text: id });
    await f.local.applyPulled({ ideas: { created: [{ id: 'p', thought_id: null, text: 'p', created_at: 1, last_modified_at: 2 }], updated: [], deleted: [] } });
    await settle();
    expect(reads, 'no read starts while one is under way').to.have.length(2);
    const done = published(store);
    openGate();
    await done;
    await settle();
    expect(reads).to.have.length(3);
    expect(store.getSnapshot().records.map((r) => r['id'])).to.deep.equal(['a', 'b', 'c', 'd', 'e', 'p']);
    off();
  });

  it('a record store reads only for events naming its row (or the whole table), and publishes null for a deleted row', async () => {
    await f.local.create('ideas', { id: 'mine', text: 'x' });
    const store = new RecordStore(f.local, 'ideas', 'mine');
    const loaded = published(store);
    const off = store.subscribe(() => undefined);
    await loaded;
    expect(store.getSnapshot().record).to.include({ id: 'mine', text: 'x' });
    await f.local.create('ideas', { id: 'other', text: 'y' });
    const manyIds = Array.from({ length: 40 }, (_, i) => ({ id: `bulk${i}`, thought_id: null, text: 'b', created_at: 1, last_modified_at: 2 }));
    await f.local.applyPulled({ ideas: { created: manyIds, updated: [], deleted: [] } });
    await settle();
    expect(reads).to.deep.equal(['get ideas mine']);
    const gone = published(store);
    await f.local.applyPulled({ ideas: { created: manyIds, updated: [], deleted: ['mine'] } });
    await gone;
    expect(store.getSnapshot()).to.deep.equal({ record: null, loading: false, error: null });
    expect(reads).to.deep.equal(['get ideas mine', 'get ideas mine']);
    off();
  });

  it('drops a read that ends after its last listener left, and reads afresh for the next one (StrictMode mounts twice)', async () => {
    await f.local.create('ideas', { id: 'i1', text: 'x' });
    const store = new QueryStore(f.local, 'ideas', {});
    closeGate();
    let publications = 0;
    const offFirst = store.subscribe(() => publications++);
    await settle();
    offFirst();
    const offSecond = store.subscribe(() => publications++);
    await settle();
    openGate();
    await settle();
    expect(reads).to.deep.equal(['query ideas', 'query ideas']);
    expect(publications).to.equal(1);
    expect(store.getSnapshot().records.map((r) => r['id'])).to.deep.equal(['i1']);
    offSecond();
    await f.local.create('ideas', { id: 'i2', text: 'y' });
    await settle();
    expect(reads, 'no listener, no read').to.have.length(2);
  });

  it('publishes a failed read as an error and keeps the last rows; the next good read clears it', async () => {
    await f.local.create('ideas', { id: 'i1', text: 'x' });
    const store = new QueryStore(f.local, 'ideas', {});
    const loaded = published(store);
    const off = store.subscribe(() => undefined);
    await loaded;
    const rows = store.getSnapshot().records;
    const failing = f.local.query;
    f.local.query = async () => {
      throw new Error('database is closed');
    };
    const failed = published(store);
    await f.local.create('ideas', { id: 'i2', text: 'y' });
    await failed;
    expect(store.getSnapshot()).to.deep.equal({ records: rows, loading: false, error: new Error('database is closed') });
    expect(store.getSnapshot().records).to.equal(rows);
    f.local.query = failing;
    const recovered = published(store);
    await f.local.update('ideas', 'i2', { text: 'z' });
    await recovered;
    expect(store.getSnapshot().error).to.equal(null);
    expect(store.getSnapshot().records.map((r) => r['id'])).to.deep.equal(['i1', 'i2']);
    off();
  });

  it('compares rows column by column, a missing column unlike a null one', () => {
    const row: WireRecord = { id: 'a', text: 'x', n: null };
    expect(sameRow(row, { ...row })).to.equal(true);
    expect(sameRow(row, { ...row, text: 'y' })).to.equal(false);
    expect(sameRow({ id: 'a', n: null }, { id: 'a', m: null })).to.equal(false);
    expect(sameRow(row, null)).to.equal(false);
    expect(sameRow(null, null)).to.equal(true);
  });
});
