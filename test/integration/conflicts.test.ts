import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, storedRow, storedRows, type ApiClient, type TestServer } from '../support/server';

/**
 * Conflict resolution over HTTP (spec §4.3). "The server" changing a row is either another
 * device's push or a direct write by another server process (e.g. the transcription worker
 * setting captures.state), which the stamp trigger orders like any push.
 */
describeEachDatabase('conflict resolution', (ctx) => {
  let server: TestServer;
  let phone: ApiClient;
  let laptop: ApiClient;
  before(async () => {
    server = await startTestServer(ctx.database.db);
  });
  after(() => server.close());
  beforeEach(() => {
    phone = server.client('ana', 'phone');
    laptop = server.client('ana', 'laptop');
  });

  async function seed(table: string, record: Record<string, unknown>): Promise<number> {
    const r = await phone.push({ changes: { [table]: { created: [record] } } });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return (await phone.pull({ last_pulled_at: 0 })).body.timestamp;
  }

  async function conflictRows(): Promise<any[]> {
    return ctx.database.db('sync_conflicts').where({ user_id: 'ana' }).orderBy('id');
  }

  it('captures: state and normalized_text stay the server\'s, tags and project_id take the client\'s', async () => {
    const cursor = await seed('captures', { id: 'c1', type: 'audio', raw_content: 'memo.m4a', tags: '[]' });
    // Another writer's plaintext, marked as such (docs/protocol.md, "Other writers").
    await ctx.database.db('captures').where({ user_id: 'ana', id: 'c1' }).update({ state: 'ready', normalized_text: 'buy milk', encrypted: false });

    const push = await phone.push({
      last_pulled_at: cursor,
      changes: { captures: { updated: [{ id: 'c1', state: 'failed', normalized_text: 'garbled', tags: '["shopping"]', project_id: 'p1' }] } },
    });
    expect(push.body.conflicts).to.deep.equal([
      { table: 'captures', id: 'c1', type: 'update_update', resolution: 'per_column', client_columns: ['tags', 'project_id'], server_columns: ['normalized_text', 'state'] },
    ]);
    const [row] = await storedRows(ctx.database.db, 'captures', 'ana');
    expect(row).to.include({ state: 'ready', normalized_text: 'buy milk', tags: '["shopping"]', project_id: 'p1', raw_content: 'memo.m4a' });

    const [logged] = await conflictRows();
    expect(logged).to.include({ entity: 'captures', record_id: 'c1', conflict_type: 'update_update', resolution_strategy: 'per_column' });
    expect(logged.client_columns).to.have.members(['tags', 'project_id']);
    expect(logged.server_columns).to.have.members(['state', 'normalized_text']);
    expect(Number(logged.resolved_at)).to.be.greaterThan(0);
  });

  it('todos: priority stays the server\'s, state and completed_at take the client\'s', async () => {
    const cursor = await seed('todos', { id: 't1', description: 'file taxes' });
    expect((await laptop.push({ last_pulled_at: cursor, changes: { todos: { updated: [{ id: 't1', priority: 'high' }] } } })).status).to.equal(200);

    const push = await phone.push({ last_pulled_at: cursor, changes: { todos: { updated: [{ id: 't1', priority: 'low', state: 'done', completed_at: 5000 }] } } });
    expect(push.body.conflicts).to.have.length(1);
    const row = await storedRow(ctx.database.db, 'todos', 'ana', 't1');
    expect(row).to.include({ priority: 'high', state: 'done', description: 'file taxes' });
    expect(Number(row.completed_at)).to.equal(5000);
  });

  for (const [table, record, edit] of [
    ['thoughts', { id: 'h1', capture_id: 'c1', summary: 'old' }, { summary: 'mine' }],
    ['ideas', { id: 'i1', text: 'old' }, { text: 'mine' }],
    ['projects', { id: 'p1', name: 'old' }, { name: 'mine', archived: true }],
  ] as const) {
    it(`${table}: the client wins every column it changed`, async () => {
      const cursor = await seed(table, record);
      const theirs = Object.fromEntries(Object.keys(edit).map((k) => [k, k === 'archived' ? false : 'theirs']));
      await laptop.push({ last_pulled_at: cursor, changes: { [table]: { updated: [{ id: record.id, ...theirs }] } } });
      const push = await phone.push({ last_pulled_at: cursor, changes: { [table]: { updated: [{ id: record.id, ...edit }] } } });
      expect(push.body.conflicts).to.deep.equal([{ table, id: record.id, type: 'update_update', resolution: 'per_column', client_columns: Object.keys(edit), server_columns: [] }]);
      const row = await storedRow(ctx.database.db, table, 'ana', record.id);
      expect(row).to.include(edit);
    });
  }

  it('_changed narrows the client\'s changes: stale columns it did not change keep the server\'s value', async () => {
    const cursor = await seed('todos', { id: 't2', description: 'v1' });
    await laptop.push({ last_pulled_at: cursor, changes: { todos: { updated: [{ id: 't2', description: 'v2 from laptop' }] } } });
    // The stock WatermelonDB client pushes the whole raw record, with _changed naming what it changed.
    const push = await phone.push({
      last_pulled_at: cursor,
      changes: { todos: { updated: [{ id: 't2', description: 'v1', state: 'done', priority: 'medium', _status: 'updated', _changed: 'state', last_modified_at: cursor }] } },
    });
    expect(push.body.conflicts).to.have.length(1);
    const row = await storedRow(ctx.database.db, 'todos', 'ana', 't2');
    expect(row).to.include({ description: 'v2 from laptop', state: 'done' });
    const [logged] = await conflictRows();
    expect(logged.client_columns).to.deep.equal(['state']);
  });

  it('without a conflict the client\'s values are applied as pushed', async () => {
    const cursor = await seed('todos', { id: 't3', description: 'v1', priority: 'low' });
    const push = await phone.push({ last_pulled_at: cursor, changes: { todos: { updated: [{ id: 't3', priority: 'high' }] } } });
    expect(push.body.conflicts).to.deep.equal([]);
    expect(await conflictRows()).to.deep.equal([]);
    expect(await storedRow(ctx.database.db, 'todos', 'ana', 't3')).to.include({ priority: 'high' });
  });

  it('update against a server-side delete: the delete wins and the pusher pulls it', async () => {
    const cursor = await seed('ideas', { id: 'i2', text: 'x' });
    await laptop.push({ last_pulled_at: cursor, changes: { ideas: { deleted: ['i2'] } } });
    const push = await phone.push({ last_pulled_at: cursor, changes: { ideas: { updated: [{ id: 'i2', text: 'edited offline' }] } } });
    expect(push.body.conflicts).to.deep.equal([{ table: 'ideas', id: 'i2', type: 'update_delete', resolution: 'delete_wins', client_columns: [], server_columns: ['text'] }]);
    const row = await storedRow(ctx.database.db, 'ideas', 'ana', 'i2');
    expect(row).to.include({ _status: 'deleted', text: 'x' });
    const pulled = await phone.pull({ last_pulled_at: cursor });
    expect(pulled.body.changes.ideas.deleted).to.deep.equal(['i2']);
    expect(pulled.body.changes.ideas.updated).to.deep.equal([]);
  });

  it('delete against a server-side update: the delete wins', async () => {
    const cursor = await seed('ideas', { id: 'i3', text: 'x' });
    await laptop.push({ last_pulled_at: cursor, changes: { ideas: { updated: [{ id: 'i3', text: 'laptop edit' }] } } });
    const push = await phone.push({ last_pulled_at: cursor, changes: { ideas: { deleted: ['i3'] } } });
    expect(push.body.conflicts).to.deep.equal([{ table: 'ideas', id: 'i3', type: 'delete_update', resolution: 'delete_wins', client_columns: [], server_columns: [] }]);
    expect(await storedRow(ctx.database.db, 'ideas', 'ana', 'i3')).to.include({ _status: 'deleted' });
    const laptopPull = await laptop.pull({ last_pulled_at: cursor });
    expect(laptopPull.body.changes.ideas.deleted).to.deep.equal(['i3']);
  });

  it('the pusher pulls the merged row afterwards, though it suppresses its own echoes', async () => {
    const cursor = await seed('todos', { id: 't4', description: 'd' });
    await laptop.push({ last_pulled_at: cursor, changes: { todos: { updated: [{ id: 't4', priority: 'high' }] } } });
    await phone.push({ last_pulled_at: cursor, changes: { todos: { updated: [{ id: 't4', state: 'done', priority: 'low' }], created: [{ id: 't5', description: 'own' }] } } });
    const pulled = await phone.pull({ last_pulled_at: cursor });
    expect(pulled.body.changes.todos.updated.map((r: any) => [r.id, r.state, r.priority])).to.deep.equal([['t4', 'done', 'high']]);
    expect(pulled.body.changes.todos.created).to.deep.equal([]);
  });
});
