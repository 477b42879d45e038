import { expect } from 'chai';
import type { ChangeSet, WireRecord } from '../../../src/domain';
import { openLocal, thrown, type LocalFixture } from './local-fixture';

/**
 * The sync engine's side of the local database: what is pending and how it is pushed, marking a
 * batch pushed while the app keeps writing, merging pulled pages into pending rows (spec §5), and
 * the quarantine of records the server refused.
 */
describe('LocalDatabase: the sync side', () => {
  let f: LocalFixture;
  beforeEach(async () => {
    f = await openLocal();
  });
  afterEach(() => f.driver.close());

  const pending = (table: string) => f.local.pendingBatch(table, 0, 1000);
  /** Marks every pending row of the table as pushed, as the engine does after a successful push. */
  const pushAll = async (table: string, at = 5_000) => f.local.markPushed(table, await pending(table), at);
  const serverTodo = (id: string, values: Partial<WireRecord> = {}): WireRecord => ({
    id,
    thought_id: null,
    description: 'from the server',
    state: 'todo',
    priority: 'medium',
    deadline: null,
    completed_at: null,
    project_id: null,
    created_at: 100,
    last_modified_at: 9_000,
    ...values,
  });
  const pulled = (table: string, changes: Partial<ChangeSet[string]>): ChangeSet => ({ [table]: { created: [], updated: [], deleted: [], ...changes } });

  describe('pending rows', () => {
    it('lists new rows as created, edited synced rows as updated with _changed, deleted rows as deleted, in write order', async () => {
      await f.local.create('todos', { id: 'synced-edit', description: 'a' });
      await f.local.create('todos', { id: 'synced-del', description: 'b' });
      await pushAll('todos');
      await f.local.create('todos', { id: 'new', description: 'c', priority: 'high' });
      await f.local.update('todos', 'synced-edit', { state: 'done' });
      await f.local.delete('todos', 'synced-del');
      const batch = await pending('todos');
      expect(batch.map((r) => [r.record['id'], r.kind])).to.deep.equal([
        ['synced-edit', 'updated'],
        ['synced-del', 'deleted'],
        ['new', 'created'],
      ]);
      const [edit, deleted, created] = batch;
      expect(edit!.record).to.include({ state: 'done', description: 'a', _changed: 'state' });
      expect(deleted!.record).to.include({ id: 'synced-del' }).and.not.to.have.property('_changed');
      expect(created!.record).to.deep.equal({ id: 'new', thought_id: null, description: 'c', state: 'todo', priority: 'high', deadline: null, completed_at: null, project_id: null, created_at: f.timers.now() });
      expect(await f.local.countPending()).to.equal(3);
    });

    it('pages with afterRowid and limit', async () => {
      for (const id of ['a', 'b', 'c', 'd', 'e']) await f.local.create('ideas', { id, text: id });
      const first = await f.local.pendingBatch('ideas', 0, 2);
      const second = await f.local.pendingBatch('ideas', first[1]!.rowid, 2);
      const third = await f.local.pendingBatch('ideas', second[1]!.rowid, 2);
      expect([first, second, third].map((b) => b.map((r) => r.record['id']))).to.deep.equal([['a', 'b'], ['c', 'd'], ['e']]);
    });

    it('lists a row deleted before it was ever pushed as a delete only', async () => {
      await f.local.create('ideas', { id: 'i1', text: 'oops' });
      await f.local.delete('ideas', 'i1');
      expect((await pending('ideas')).map((r) => [r.record['id'], r.kind])).to.deep.equal([['i1', 'deleted']]);
    });
  });

  describe('markPushed', () => {
    it('marks pushed rows clean with the server cursor and purges pushed deletes', async () => {
      await f.local.create('ideas', { id: 'kept', text: 'k' });
      await f.local.create('ideas', { id: 'gone', text: 'g' });
      await pushAll('ideas', 7_000);
      await f.local.delete('ideas', 'gone');
      await pushAll('ideas', 8_000);
      expect(await f.bookkeeping('ideas', 'kept')).to.deep.equal({ _changed: '', _status: 'active', _version: 1, last_modified_at: 7_000 });
      expect(await f.bookkeeping('ideas', 'gone')).to.equal(undefined);
      expect([await pending('ideas'), await f.local.countPending()]).to.deep.equal([[], 0]);
    });

    it('keeps a row pending when it was edited after its batch was taken', async () => {
      await f.local.create('todos', { id: 't1', description: 'draft 1' });
      await f.local.create('todos', { id: 't2', description: 'other' });
      const batch = await pending('todos');
      await f.local.update('todos', 't1', { description: 'draft 2' });
      await f.local.markPushed('todos', batch, 7_000);
      expect(await f.bookkeeping('todos', 't2')).to.include({ _changed: '' });
      expect(await f.bookkeeping('todos', 't1')).to.include({ _version: 2, last_modified_at: 7_000 });
      const next = await pending('todos');
      expect(next.map((r) => [r.record['id'], r.kind, r.record['description']])).to.deep.equal([['t1', 'updated', 'draft 2']]);
      expect(String(next[0]!.record['_changed']).split(',')).to.include('description');
    });

    it('keeps a row deleted after its batch was taken as a pending delete', async () => {
      await f.local.create('ideas', { id: 'i1', text: 'x' });
      const batch = await pending('ideas');
      await f.local.delete('ideas', 'i1');
      await f.local.markPushed('ideas', batch, 7_000);
      expect((await pending('ideas')).map((r) => [r.record['id'], r.kind])).to.deep.equal([['i1', 'deleted']]);
    });
  });

  describe('applyPulled', () => {
    it('inserts pulled rows clean, with the server cursor, and counts what it applied', async () => {
      const { applied, merges } = await f.local.applyPulled(pulled('todos', { created: [serverTodo('t1')], updated: [serverTodo('t2', { description: 'updated elsewhere' })] }));
      expect(applied).to.equal(2);
      expect(merges).to.deep.equal([]);
      expect(await f.local.get('todos', 't2')).to.deep.equal(serverTodo('t2', { description: 'updated elsewhere' }));
      expect(await f.bookkeeping('todos', 't1')).to.deep.equal({ _changed: '', _status: 'active', _version: 0, last_modified_at: 9_000 });
      expect(await f.local.countPending()).to.equal(0);
    });

    it('converts pulled booleans for storage and reads them back', async () => {
      await f.local.applyPulled(pulled('projects', { created: [{ id: 'p1', name: 'home', color: null, archived: true, created_at: 1, last_modified_at: 2 }] }));
      expect(await f.local.get('projects', 'p1')).to.include({ archived: true });
    });

    it('merges into a pending row: local changes stay, other columns and server-owned ones take the server value', async () => {
      await f.local.create('todos', { id: 't1', description: 'local draft' });
      await pushAll('todos');
      await f.local.update('todos', 't1', { description: 'edited here', priority: 'low' });
      const { merges } = await f.local.applyPulled(pulled('todos', { updated: [serverTodo('t1', { description: 'edited there', priority: 'high', state: 'done', completed_at: 8_000 })] }));
      expect(merges).to.deep.equal([{ table: 'todos', id: 't1', type: 'update_update', resolution: 'per_column', clientColumns: ['description'], serverColumns: ['priority'], detectedBy: 'device' }]);
      expect(await f.local.get('todos', 't1')).to.include({ description: 'edited here', priority: 'high', state: 'done', completed_at: 8_000, last_modified_at: 9_000 });
      expect(await f.bookkeeping('todos', 't1')).to.include({ _changed: 'description' });
      expect((await pending('todos')).map((r) => [r.kind, r.record['_changed']])).to.deep.equal([['updated', 'description']]);
    });

    it('drops every server-owned column of captures from _changed, keeping the others', async () => {
      await f.local.create('captures', { id: 'c1', type: 'text', raw_content: 'x' });
      await pushAll('captures');
      await f.local.update('captures', 'c1', { state: 'ready', tags: '["a"]', normalized_text: 'mine' });
      const server = { id: 'c1', type: 'text', raw_content: 'x', normalized_text: 'theirs', state: 'processing', tags: '[]', project_id: 'p9', duration_ms: null, created_at: 1, last_modified_at: 9_000 };
      await f.local.applyPulled(pulled('captures', { updated: [server] }));
      expect(await f.local.get('captures', 'c1')).to.include({ normalized_text: 'theirs', state: 'processing', tags: '["a"]', project_id: 'p9' });
      expect(await f.bookkeeping('captures', 'c1')).to.include({ _changed: 'tags' });
    });

    it('leaves a locally deleted row deleted, its delete still pending', async () => {
      await f.local.create('ideas', { id: 'i1', text: 'x' });
      await pushAll('ideas');
      await f.local.delete('ideas', 'i1');
      const { merges } = await f.local.applyPulled(pulled('ideas', { updated: [{ id: 'i1', thought_id: null, text: 'edited elsewhere', created_at: 1, last_modified_at: 9_000 }] }));
      expect(merges.map((m) => [m.id, m.type, m.resolution])).to.deep.equal([['i1', 'delete_update', 'delete_wins']]);
      expect(await f.local.get('ideas', 'i1')).to.equal(null);
      expect((await pending('ideas')).map((r) => [r.record['id'], r.kind])).to.deep.equal([['i1', 'deleted']]);
    });

    it('purges rows deleted on the server, pending or not, and forgets their quarantine', async () => {
      await f.local.applyPulled(pulled('ideas', { created: [{ id: 'clean', thought_id: null, text: 'c', created_at: 1, last_modified_at: 2 }] }));
      await f.local.create('ideas', { id: 'edited', text: 'e' });
      await f.local.quarantine('ideas', [{ id: 'edited', reason: 'too long' }]);
      const { applied, merges } = await f.local.applyPulled(pulled('ideas', { deleted: ['clean', 'edited', 'unknown'] }));
      expect(applied).to.equal(3);
      // The local edit lost to the server's delete: reported as a conflict the delete won.
      expect(merges).to.deep.equal([{ table: 'ideas', id: 'edited', type: 'update_delete', resolution: 'delete_wins', clientColumns: [], serverColumns: ['thought_id', 'text'], detectedBy: 'device' }]);
      expect([await f.bookkeeping('ideas', 'clean'), await f.bookkeeping('ideas', 'edited')]).to.deep.equal([undefined, undefined]);
      expect(await f.local.listQuarantined()).to.deep.equal([]);
    });

    it('applies a page larger than one statement chunk', async () => {
      const records = Array.from({ length: 120 }, (_, i) => ({ id: `i${String(i).padStart(3, '0')}`, thought_id: null, text: `idea ${i}`, created_at: i, last_modified_at: 1_000 + i }));
      expect((await f.local.applyPulled(pulled('ideas', { created: records }))).applied).to.equal(120);
      const stored = await f.local.query('ideas', { orderBy: 'id' });
      expect(stored).to.have.length(120);
      expect(stored[119]).to.deep.equal(records[119]);
    });

    it('merges pending rows in every chunk of a page of 12,001 records and applies the rest', async () => {
      const id = (i: number) => `c${String(i).padStart(5, '0')}`;
      const capture = (i: number, values: Partial<WireRecord> = {}): WireRecord => ({ id: id(i), type: 'text', raw_content: `server ${i}`, normalized_text: null, state: 'captured', tags: '[]', project_id: null, duration_ms: null, created_at: i, last_modified_at: 20_000 + i, ...values });
      const edited = [7, 4_999, 5_000, 11_998];
      for (const i of edited) await f.local.create('captures', { id: id(i), type: 'text', raw_content: `local ${i}` });
      await pushAll('captures');
      for (const i of edited) await f.local.update('captures', id(i), { raw_content: `edited ${i}`, state: 'ready' });
      const records = Array.from({ length: 12_001 }, (_, i) => capture(i, { state: 'processing' }));
      const { applied, merges } = await f.local.applyPulled(pulled('captures', { updated: records }));
      expect(applied).to.equal(12_001);
      expect(merges.map((m) => [m.id, m.type, m.clientColumns, m.serverColumns])).to.deep.equal(edited.map((i) => [id(i), 'update_update', ['raw_content'], ['state']]));
      for (const i of edited) {
        expect(await f.local.get('captures', id(i))).to.include({ raw_content: `edited ${i}`, state: 'processing', last_modified_at: 20_000 + i });
        expect(await f.bookkeeping('captures', id(i))).to.include({ _changed: 'raw_content' });
      }
      expect(await f.local.get('captures', id(12_000))).to.deep.equal(capture(12_000, { state: 'processing' }));
      expect(await f.local.countPending()).to.equal(edited.length);
    });

    it('stores a pulled number in a text column as a bound parameter stores it', async () => {
      await f.driver.execute('INSERT INTO ideas (id, text, created_at) VALUES (?, ?, ?)', ['bound', 5, 1]);
      await f.local.applyPulled(pulled('ideas', { created: [{ id: 'pulled', thought_id: null, text: 5, created_at: 1, last_modified_at: 2 }, { id: 'plain', thought_id: null, text: 'x', created_at: 1, last_modified_at: 3 }] }));
      const bound = (await f.local.get('ideas', 'bound'))!['text'];
      expect((await f.local.get('ideas', 'pulled'))!['text']).to.equal(bound);
      expect(await f.local.get('ideas', 'plain')).to.include({ text: 'x', last_modified_at: 3 });
    });

    it('applies a page all or nothing: a record missing a required column rejects the whole page', async () => {
      await f.local.create('todos', { id: 'mine', description: 'pending' });
      const page = pulled('todos', { created: [serverTodo('fine')], updated: [serverTodo('mine', { description: 'server' }), serverTodo('broken', { description: null })] });
      await thrown(() => f.local.applyPulled(page));
      expect(await f.local.get('todos', 'fine')).to.equal(null);
      expect(await f.local.get('todos', 'mine')).to.include({ description: 'pending', last_modified_at: null });
    });

    it('ignores tables this app version does not know', async () => {
      expect(await f.local.applyPulled({ notes: { created: [{ id: 'n1', body: 'x' }], updated: [], deleted: [] } })).to.deep.equal({ applied: 0, merges: [] });
    });
  });

  describe('quarantine', () => {
    it('sets quarantined records aside from pushes and the pending count, with their reason and time', async () => {
      await f.local.create('ideas', { id: 'bad', text: 'x' });
      await f.local.create('ideas', { id: 'good', text: 'y' });
      f.timers.clock = 1_800_000_000_000;
      await f.local.quarantine('ideas', [{ id: 'bad', reason: 'text: too long' }]);
      expect(await f.local.listQuarantined()).to.deep.equal([{ table: 'ideas', id: 'bad', reason: 'text: too long', quarantinedAt: 1_800_000_000_000 }]);
      expect((await pending('ideas')).map((r) => r.record['id'])).to.deep.equal(['good']);
      expect(await f.local.countPending()).to.equal(1);
      expect(await f.local.get('ideas', 'bad')).to.include({ text: 'x' });
    });

    it('replaces the reason when a record is quarantined again', async () => {
      await f.local.create('ideas', { id: 'bad', text: 'x' });
      await f.local.quarantine('ideas', [{ id: 'bad', reason: 'first' }]);
      await f.local.quarantine('ideas', [{ id: 'bad', reason: 'second' }]);
      expect((await f.local.listQuarantined()).map((q) => q.reason)).to.deep.equal(['second']);
    });

    it('puts a released record back in the push queue and tells the listeners', async () => {
      const heard: string[] = [];
      f.local.onChange((e) => heard.push(e.table));
      await f.local.create('ideas', { id: 'bad', text: 'x' });
      await f.local.quarantine('ideas', [{ id: 'bad', reason: 'r' }]);
      await f.local.releaseQuarantined('ideas', 'bad');
      expect(await f.local.listQuarantined()).to.deep.equal([]);
      expect((await pending('ideas')).map((r) => r.record['id'])).to.deep.equal(['bad']);
      expect(heard).to.deep.equal(['ideas', 'ideas']);
    });

    it('discards a never-pushed record entirely, needing no re-pull', async () => {
      await f.local.create('ideas', { id: 'bad', text: 'x' });
      await f.local.quarantine('ideas', [{ id: 'bad', reason: 'r' }]);
      expect(await f.local.discardQuarantined('ideas', 'bad')).to.equal(false);
      expect([await f.bookkeeping('ideas', 'bad'), await f.local.listQuarantined()]).to.deep.equal([undefined, []]);
    });

    it('discards the local changes of a record the server has, asking for a re-pull of its table', async () => {
      await f.local.create('ideas', { id: 'bad', text: 'x' });
      await pushAll('ideas');
      await f.local.update('ideas', 'bad', { text: 'rejected edit' });
      await f.local.quarantine('ideas', [{ id: 'bad', reason: 'r' }]);
      expect(await f.local.discardQuarantined('ideas', 'bad')).to.equal(true);
      expect(await f.bookkeeping('ideas', 'bad')).to.include({ _changed: '', _status: 'active' });
      expect([await pending('ideas'), await f.local.listQuarantined()]).to.deep.equal([[], []]);
    });
  });
});
