import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';

describeEachDatabase('pull pagination', (ctx) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db, { SYNC_PULL_LIMIT: '50' });
  });
  after(() => server.close());

  it('returns every row exactly once across pages of a small limit, with writes between pages', async () => {
    const writer = server.client('dan', 'writer');
    const reader = server.client('dan', 'reader');
    const mk = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, text: `${prefix} ${i}` }));
    await writer.push({ changes: { ideas: { created: mk('a', 30) }, projects: { created: [{ id: 'p1', name: 'home' }] }, captures: { created: [{ id: 'c1', type: 'text', raw_content: 'x' }] } } });

    const seen = new Map<string, number>();
    const state = new Map<string, any>();
    let cursor: number | null = null;
    let pages = 0;
    for (;;) {
      const r = await reader.pull({ last_pulled_at: cursor, limit: 7 });
      expect(r.status).to.equal(200);
      pages++;
      const ids: string[] = [];
      for (const [table, ch] of Object.entries<any>(r.body.changes)) {
        for (const row of [...ch.created, ...ch.updated]) {
          ids.push(`${table}/${row.id}`);
          state.set(`${table}/${row.id}`, row);
        }
        for (const id of ch.deleted) {
          ids.push(`${table}/${id}`);
          state.delete(`${table}/${id}`);
        }
      }
      expect(ids.length).to.be.at.most(7);
      for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
      if (r.body.has_more) expect(ids.length).to.equal(7);
      cursor = r.body.timestamp;
      if (pages === 2) {
        // Writes landing mid-pagination come after the cursor, so later pages carry them.
        await writer.push({ changes: { ideas: { created: mk('b', 5), updated: [{ id: 'a0', text: 'edited' }], deleted: ['a1'] } } });
      }
      if (!r.body.has_more) break;
    }
    expect(pages).to.be.greaterThan(5);
    const server_ = await ctx.database.db('ideas').where({ user_id: 'dan', _status: 'active' }).orderBy('id');
    const pulledIdeas = [...state.entries()].filter(([k]) => k.startsWith('ideas/')).map(([, v]) => v);
    expect(pulledIdeas.map((r) => r.id).sort()).to.deep.equal(server_.map((r: any) => r.id).sort());
    expect(state.get('ideas/a0').text).to.equal('edited');
    expect(state.has('ideas/a1')).to.equal(false);
    // Rows untouched during pagination came exactly once.
    for (let i = 2; i < 30; i++) expect(seen.get(`ideas/a${i}`), `a${i}`).to.equal(1);
    expect(seen.get('projects/p1')).to.equal(1);
  });

  it('caps the client\'s limit at SYNC_PULL_LIMIT and says has_more', async () => {
    const writer = server.client('erin', 'w');
    const ideas = Array.from({ length: 60 }, (_, i) => ({ id: `i${String(i).padStart(2, '0')}`, text: 't' }));
    await writer.push({ changes: { ideas: { created: ideas } } });
    const r = await server.client('erin').pull({ last_pulled_at: 0, limit: 1000 });
    expect(r.body.changes.ideas.created).to.have.length(50);
    expect(r.body.has_more).to.equal(true);
    const rest = await server.client('erin').pull({ last_pulled_at: r.body.timestamp, limit: 1000 });
    expect(rest.body.changes.ideas.created).to.have.length(10);
    expect(rest.body.has_more).to.equal(false);
  });
});
