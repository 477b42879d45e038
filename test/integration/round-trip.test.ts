import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';

describeEachDatabase('sync round trip over HTTP', (ctx) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db);
  });
  after(() => server.close());

  it('carries a create, an update and a soft delete from one device to another, classified per spec §4.1', async () => {
    const phone = server.client('alice', 'phone');
    const tablet = server.client('alice', 'tablet');

    const first = await tablet.pull({ last_pulled_at: null });
    expect(first.status).to.equal(200);
    expect(first.body.timestamp).to.be.a('number').greaterThan(0);
    expect(Object.keys(first.body.changes)).to.deep.equal(['captures', 'todos', 'thoughts', 'ideas', 'projects']);
    const tabletCursor = first.body.timestamp;

    const created = await phone.push({
      last_pulled_at: null,
      changes: {
        captures: { created: [{ id: 'c1', type: 'text', raw_content: 'first thought', tags: '["a"]', created_at: 1000 }] },
        todos: { created: [{ id: 't1', description: 'call mum', created_at: 1001 }, { id: 't2', description: 'buy milk', created_at: 1002 }] },
      },
    });
    expect(created.status).to.equal(200);
    expect(created.body.conflicts).to.deep.equal([]);

    const afterCreate = await tablet.pull({ last_pulled_at: tabletCursor });
    expect(afterCreate.body.changes.captures.created.map((r: any) => r.id)).to.deep.equal(['c1']);
    expect(afterCreate.body.changes.captures.created[0]).to.include({ type: 'text', raw_content: 'first thought', tags: '["a"]', state: 'captured', created_at: 1000 });
    expect(afterCreate.body.changes.todos.created.map((r: any) => r.id)).to.deep.equal(['t1', 't2']);
    expect(afterCreate.body.changes.todos.updated).to.deep.equal([]);
    const cursor2 = afterCreate.body.timestamp;

    const phonePull = await phone.pull({ last_pulled_at: created.body.timestamp });
    const edit = await phone.push({
      last_pulled_at: phonePull.body.timestamp,
      changes: { todos: { updated: [{ id: 't1', state: 'done', completed_at: 2000, _changed: 'state,completed_at' }], deleted: ['t2'] } },
    });
    expect(edit.status).to.equal(200);
    expect(edit.body.conflicts).to.deep.equal([]);

    const afterEdit = await tablet.pull({ last_pulled_at: cursor2 });
    expect(afterEdit.body.changes.todos.created).to.deep.equal([]);
    expect(afterEdit.body.changes.todos.updated).to.have.length(1);
    expect(afterEdit.body.changes.todos.updated[0]).to.include({ id: 't1', state: 'done', completed_at: 2000, description: 'call mum' });
    expect(afterEdit.body.changes.todos.deleted).to.deep.equal(['t2']);
    expect(afterEdit.body.changes.captures).to.deep.equal({ created: [], updated: [], deleted: [] });

    const again = await tablet.pull({ last_pulled_at: afterEdit.body.timestamp });
    for (const table of Object.values<any>(again.body.changes)) expect(table).to.deep.equal({ created: [], updated: [], deleted: [] });
    expect(again.body.timestamp).to.equal(afterEdit.body.timestamp);

    const rows = await ctx.database.db('todos').where({ user_id: 'alice' }).orderBy('id');
    expect(rows.map((r: any) => [r.id, r._status])).to.deep.equal([
      ['t1', 'active'],
      ['t2', 'deleted'],
    ]);
  });

  it('gives a first sync only active rows, all as created', async () => {
    const phone = server.client('bob', 'phone');
    await phone.push({ changes: { ideas: { created: [{ id: 'i1', text: 'keep' }, { id: 'i2', text: 'drop' }] } } });
    await phone.push({ changes: { ideas: { deleted: ['i2'] } } });
    const fresh = await server.client('bob', 'new-phone').pull({});
    expect(fresh.body.changes.ideas.created.map((r: any) => r.id)).to.deep.equal(['i1']);
    expect(fresh.body.changes.ideas.updated).to.deep.equal([]);
    expect(fresh.body.changes.ideas.deleted).to.deep.equal([]);
  });

  it('returns only the requested tables, each with all three arrays', async () => {
    const r = await server.client('carol').pull({ tables: 'todos,captures' });
    expect(r.status).to.equal(200);
    expect(r.body.changes).to.deep.equal({
      captures: { created: [], updated: [], deleted: [] },
      todos: { created: [], updated: [], deleted: [] },
    });
  });

  it('answers /healthz and /readyz without a token', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).to.equal(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).to.equal(200);
    expect(await ready.json()).to.deep.equal({ status: 'ready' });
  });
});
