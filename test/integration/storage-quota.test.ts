import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { expectError } from '../support/http-helpers';
import { snapshotAll, startTestServer, type TestServer } from '../support/server';

/**
 * Issue 20, item 1 (second half): a per-user storage quota (SYNC_USER_QUOTA_BYTES). A push that
 * would take the user's stored bytes over it is refused whole with 507 QUOTA_EXCEEDED, and
 * nothing is written; a push that does not grow the user's data (an edit that shrinks a record,
 * a delete) still goes through.
 */
describeEachDatabase('per-user storage quota', (ctx) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db, { SYNC_USER_QUOTA_BYTES: '20000' });
  });
  after(() => server.close());

  const idea = (id: string, bytes: number) => ({ id, text: 'x'.repeat(bytes) });

  it('refuses the push that would go over, writing nothing; other users and shrinking or deleting pushes go on', async () => {
    const ann = server.client('ann', 'phone');
    expect((await ann.push({ changes: { ideas: { created: [idea('a', 6000), idea('b', 6000)] } } })).status).to.equal(200);
    const before = await snapshotAll(ctx.database.db);

    // Bad input tried: two new 6 KB records on top of 12 KB under a 20 KB quota.
    const over = await ann.push({ changes: { ideas: { created: [idea('c', 6000), idea('d', 6000)] } } });
    const details = expectError(over, 507, 'QUOTA_EXCEEDED');
    expect(over.body.error.message).to.match(/storage/i);
    expect(details).to.include({ quota_bytes: 20000 });
    expect(details.used_bytes).to.be.a('number').within(12000, 12400);
    expect(details.needed_bytes).to.be.a('number').within(12000, 12400);
    expect(await snapshotAll(ctx.database.db), 'nothing was written').to.deep.equal(before);

    expect((await server.client('bob').push({ changes: { ideas: { created: [idea('c', 6000), idea('d', 6000)] } } })).status, "another user's quota is their own").to.equal(200);
    expect((await ann.push({ changes: { ideas: { created: [idea('c', 6000)] } } })).status, 'one fits').to.equal(200);
    expectError(await ann.push({ changes: { ideas: { created: [idea('d', 6000)] } } }), 507, 'QUOTA_EXCEEDED');
    expect((await ann.push({ changes: { ideas: { deleted: ['b'] } } })).status, 'a delete goes through (its tombstone keeps its values: no space freed)').to.equal(200);
    expectError(await ann.push({ changes: { ideas: { created: [idea('d', 6000)] } } }), 507, 'QUOTA_EXCEEDED');
    expect((await ann.push({ changes: { ideas: { updated: [{ id: 'a', text: 'small' }] } } })).status, 'a shrinking edit').to.equal(200);
    // 'a' shrank by about 6 KB: the 6 KB record fits now.
    expect((await ann.push({ changes: { ideas: { created: [idea('d', 6000)] } } })).status).to.equal(200);
  });

  it('counts an edit by its growth: rewriting a record the same size never fails, growing it past the quota does', async () => {
    const cy = server.client('cy');
    expect((await cy.push({ changes: { ideas: { created: [idea('a', 15000)] } } })).status).to.equal(200);
    for (let i = 0; i < 3; i++) expect((await cy.push({ changes: { ideas: { updated: [{ id: 'a', text: String(i).repeat(15000) }] } } })).status).to.equal(200);
    expectError(await cy.push({ changes: { ideas: { updated: [{ id: 'a', text: 'y'.repeat(25000) }] } } }), 507, 'QUOTA_EXCEEDED');
  });

  it('counts usage in sync_users.stored_bytes, the same on every replica and restart', async () => {
    const dee = server.client('dee');
    expect((await dee.push({ changes: { ideas: { created: [idea('a', 5000)] } } })).status).to.equal(200);
    const [row] = await ctx.database.db('sync_users').where({ user_id: 'dee' }).select('stored_bytes');
    expect(Number(row.stored_bytes)).to.be.within(5000, 5200);
    const again = await startTestServer(ctx.database.db, { SYNC_USER_QUOTA_BYTES: '10000' });
    try {
      expectError(await again.client('dee').push({ changes: { ideas: { created: [idea('b', 5000)] } } }), 507, 'QUOTA_EXCEEDED');
    } finally {
      await again.close();
    }
  });
});
