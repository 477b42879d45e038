import { expect } from 'chai';
import type { ChangeSet, WireRecord } from '../../../src/domain';
import type { ChangeEvent } from '../../../mobile/src/local-database';
import { openLocal, thrown, type LocalFixture } from './local-fixture';

/**
 * The change events of the local database (what the React hooks re-read on, and what the client
 * debounces a sync on): one per committed write, naming its table, the rows, and who wrote it.
 */
describe('LocalDatabase: change events', () => {
  let f: LocalFixture;
  let heard: ChangeEvent[];
  beforeEach(async () => {
    f = await openLocal();
    heard = [];
    f.local.onChange((e) => heard.push(e));
  });
  afterEach(() => f.driver.close());

  const idea = (id: string, text = id, at = 9_000): WireRecord => ({ id, thought_id: null, text, created_at: 1, last_modified_at: at });
  const page = (changes: Record<string, Partial<ChangeSet[string]>>): ChangeSet =>
    Object.fromEntries(Object.entries(changes).map(([t, c]) => [t, { created: [], updated: [], deleted: [], ...c }]));
  const pushAll = async (table: string) => f.local.markPushed(table, await f.local.pendingBatch(table, 0, 1000), 5_000);

  it('tells each local create, update and delete with its row, after it is stored', async () => {
    const seenInDb: unknown[] = [];
    f.local.onChange((e) => void f.local.get(e.table, e.ids![0]!).then((r) => seenInDb.push(r?.['text'] ?? null)));
    await f.local.create('ideas', { id: 'i1', text: 'first' });
    await f.local.update('ideas', 'i1', { text: 'second' });
    await f.local.delete('ideas', 'i1');
    expect(heard).to.deep.equal([
      { table: 'ideas', ids: ['i1'], source: 'local' },
      { table: 'ideas', ids: ['i1'], source: 'local' },
      { table: 'ideas', ids: ['i1'], source: 'local' },
    ]);
    await f.local.countPending(); // the reads queued by the listener have run
    expect(seenInDb).to.deep.equal(['first', 'second', null]);
  });

  it('tells nothing for a write that did not happen (duplicate id, missing row, bad value)', async () => {
    await f.local.create('ideas', { id: 'i1', text: 'x' });
    heard.length = 0;
    await thrown(() => f.local.create('ideas', { id: 'i1', text: 'again' }));
    await thrown(() => f.local.update('ideas', 'nope', { text: 'y' }));
    await thrown(() => f.local.update('ideas', 'i1', { text: 42 }));
    await f.local.delete('ideas', 'nope');
    expect(heard).to.deep.equal([]);
  });

  it('tells a pulled page once per table, with every id it created, updated or deleted, after it commits', async () => {
    await f.local.applyPulled(page({ ideas: { created: [idea('gone')] } }));
    heard.length = 0;
    let visible: string[] | null = null;
    f.local.onChange((e) => {
      if (e.table === 'ideas') void f.local.query('ideas', { orderBy: 'id' }).then((rows) => (visible = rows.map((r) => r['id'] as string)));
    });
    await f.local.applyPulled(
      page({
        ideas: { created: [idea('a')], updated: [idea('b')], deleted: ['gone'] },
        projects: { created: [{ id: 'p1', name: 'home', color: null, archived: false, created_at: 1, last_modified_at: 2 }] },
        todos: {},
        unknown_table: { created: [{ id: 'x' }] },
      }),
    );
    expect(heard).to.deep.equal([
      { table: 'ideas', ids: ['a', 'b', 'gone'], source: 'pull' },
      { table: 'projects', ids: ['p1'], source: 'pull' },
    ]);
    await f.local.countPending();
    expect(visible).to.deep.equal(['a', 'b']);
  });

  it('tells nothing for a pulled page that was rolled back', async () => {
    const bad = page({ ideas: { created: [idea('ok'), { id: 'broken', created_at: 1, last_modified_at: 2 } as WireRecord] } });
    await thrown(() => f.local.applyPulled(bad));
    expect([heard, await f.local.get('ideas', 'ok')]).to.deep.equal([[], null]);
  });

  it("tells the rows a first sync's sweep dropped, as pulled, and nothing when it dropped none", async () => {
    await f.local.applyPulled(page({ ideas: { created: [idea('kept'), idea('dropped1'), idea('dropped2')] } }));
    await f.local.create('ideas', { id: 'local-only', text: 'never synced' });
    heard.length = 0;
    expect(await f.local.dropUnseenSynced('ideas', new Set(['kept']))).to.equal(2);
    expect(heard).to.deep.equal([{ table: 'ideas', ids: ['dropped1', 'dropped2'], source: 'pull' }]);
    heard.length = 0;
    expect(await f.local.dropUnseenSynced('ideas', new Set(['kept']))).to.equal(0);
    expect(heard).to.deep.equal([]);
  });

  it("tells the server's stamp on rows a push created (as pulled), and nothing for a push of updates and deletes", async () => {
    await f.local.create('ideas', { id: 'new1', text: 'x' });
    await f.local.create('ideas', { id: 'new2', text: 'y' });
    heard.length = 0;
    await pushAll('ideas');
    expect(heard).to.deep.equal([{ table: 'ideas', ids: ['new1', 'new2'], source: 'pull' }]);
    expect(await f.local.get('ideas', 'new1')).to.include({ last_modified_at: 5_000 });
    await f.local.update('ideas', 'new1', { text: 'edited' });
    await f.local.delete('ideas', 'new2');
    heard.length = 0;
    await pushAll('ideas');
    expect(heard).to.deep.equal([]);
  });

  it('tells a released or discarded quarantined record as a local change, and nothing for one not there', async () => {
    await f.local.create('ideas', { id: 'released', text: 'x' });
    await f.local.create('ideas', { id: 'discarded', text: 'y' });
    await f.local.quarantine('ideas', [
      { id: 'released', reason: 'r' },
      { id: 'discarded', reason: 'r' },
    ]);
    heard.length = 0;
    await f.local.releaseQuarantined('ideas', 'released');
    await f.local.discardQuarantined('ideas', 'discarded');
    await f.local.discardQuarantined('ideas', 'never-there');
    expect(heard).to.deep.equal([
      { table: 'ideas', ids: ['released'], source: 'local' },
      { table: 'ideas', ids: ['discarded'], source: 'local' },
    ]);
    expect(await f.local.get('ideas', 'discarded')).to.equal(null);
  });

  it('tells a discarded delete of a synced row (the row shows again) as a local change', async () => {
    await f.local.create('ideas', { id: 'i1', text: 'x' });
    await pushAll('ideas');
    await f.local.delete('ideas', 'i1');
    await f.local.quarantine('ideas', [{ id: 'i1', reason: 'r' }]);
    heard.length = 0;
    expect(await f.local.discardQuarantined('ideas', 'i1')).to.equal(true);
    expect(heard).to.deep.equal([{ table: 'ideas', ids: ['i1'], source: 'local' }]);
    expect(await f.local.get('ideas', 'i1')).to.include({ text: 'x' });
  });

  it('stops telling a listener once it unsubscribed', async () => {
    const mine: ChangeEvent[] = [];
    const off = f.local.onChange((e) => mine.push(e));
    await f.local.create('ideas', { id: 'i1', text: 'x' });
    off();
    await f.local.create('ideas', { id: 'i2', text: 'y' });
    expect(mine.map((e) => e.ids)).to.deep.equal([['i1']]);
    expect(heard.map((e) => e.ids)).to.deep.equal([['i1'], ['i2']]);
  });

  it("does not fail the write when a listener throws: the others still hear it, and the error is thrown where the app's handler sees it", async () => {
    // Mocha's own handler would fail the test on the rethrown error: set aside while it is awaited.
    const mochaHandlers = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    try {
      const uncaught = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
      f.local.onChange(() => {
        throw new Error('listener bug');
      });
      const after: ChangeEvent[] = [];
      f.local.onChange((e) => after.push(e));
      const created = await f.local.create('ideas', { id: 'i1', text: 'x' });
      expect(created).to.include({ id: 'i1' });
      expect(after).to.have.length(1);
      expect(((await uncaught) as Error).message).to.equal('listener bug');
    } finally {
      for (const h of mochaHandlers) process.on('uncaughtException', h);
    }
  });
});
