import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { expectDetails, expectError, snapshotDb } from '../support/http-helpers';
import { startTestServer, storedRow, storedRows, type ApiClient, type TestServer } from '../support/server';

/**
 * Isolation between users (spec §2): whatever ids B sends, B never reads, overwrites, deletes or
 * learns of A's rows. Rows are keyed by (user_id, id), so B's push of A's id makes B's own row.
 * A pushed record naming another user_id gets 403 and nothing of that push is written.
 */
describeEachDatabase('isolation between users', (ctx) => {
  let server: TestServer;
  let alice: ApiClient;
  let bob: ApiClient;
  before(async () => {
    server = await startTestServer(ctx.database.db);
  });
  after(() => server.close());

  const ALICE_ROWS = {
    captures: [{ id: 'c1', type: 'text', raw_content: "alice's secret", tags: '["private"]', created_at: 1000 }],
    todos: [{ id: 't1', description: "alice's todo", created_at: 1000 }],
    thoughts: [{ id: 'h1', capture_id: 'c1', summary: "alice's thought", created_at: 1000 }],
    ideas: [{ id: 'i1', text: "alice's idea", created_at: 1000 }],
    projects: [{ id: 'p1', name: "alice's project", created_at: 1000 }],
  };

  let aliceCursor: number;
  let aliceStored: Record<string, any[]>;
  beforeEach(async () => {
    alice = server.client('alice', 'alice-phone');
    bob = server.client('bob', 'bob-phone');
    const changes = Object.fromEntries(Object.entries(ALICE_ROWS).map(([t, rows]) => [t, { created: rows }]));
    const r = await alice.push({ changes });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    aliceCursor = r.body.timestamp;
    aliceStored = {};
    for (const t of Object.keys(ALICE_ROWS)) aliceStored[t] = await storedRows(ctx.database.db, t, 'alice');
  });

  async function expectAliceUnchanged(): Promise<void> {
    for (const t of Object.keys(ALICE_ROWS)) expect(await storedRows(ctx.database.db, t, 'alice'), t).to.deep.equal(aliceStored[t]);
    const pulled = await server.client('alice', 'alice-tablet').pull({ last_pulled_at: aliceCursor });
    expect(pulled.status).to.equal(200);
    for (const [t, ch] of Object.entries<any>(pulled.body.changes)) expect(ch, t).to.deep.equal({ created: [], updated: [], deleted: [] });
  }

  it("B's first sync, incremental pull and migration pull return none of A's rows", async () => {
    // B writes first: with no stamp of its own B's pulls read nothing at all, so a pull that
    // forgot user_id could not show A's rows here. B's stamp is not older than A's rows.
    const bobsRows = Object.fromEntries(Object.entries(ALICE_ROWS).map(([t, rows]) => [t, rows.map((r) => JSON.parse(JSON.stringify({ ...r, id: `b-${r.id}` }).replaceAll('alice', 'bob')))]));
    // From another of B's devices: an incremental pull leaves out the puller's own device's writes.
    const written = await server.client('bob', 'bob-laptop').push({ last_pulled_at: null, changes: Object.fromEntries(Object.entries(bobsRows).map(([t, rows]) => [t, { created: rows }])) });
    expect(written.status, JSON.stringify(written.body)).to.equal(200);
    expect(written.body.timestamp).to.be.at.least(aliceCursor);
    const pulls = [
      await bob.pull({ last_pulled_at: null }),
      await bob.pull({ last_pulled_at: 1 }),
      await bob.pull({ last_pulled_at: 0, tables: 'captures,todos,thoughts,ideas,projects' }),
      await bob.pull({ last_pulled_at: aliceCursor - 1, migration: JSON.stringify({ from: 1, tables: ['captures', 'todos', 'thoughts', 'ideas', 'projects'], columns: [] }) }),
    ];
    for (const p of pulls) {
      expect(p.status, JSON.stringify(p.body)).to.equal(200);
      expect(Object.keys(p.body.changes).sort()).to.deep.equal(Object.keys(ALICE_ROWS).sort());
      for (const [t, ch] of Object.entries<any>(p.body.changes)) {
        expect([...ch.created, ...ch.updated].map((r: any) => r.id), t).to.deep.equal([`b-${(ALICE_ROWS as Record<string, Array<{ id: string }>>)[t]![0]!.id}`]);
        expect(ch.deleted, t).to.deep.equal([]);
      }
      expect(JSON.stringify(p.body)).not.to.include('alice');
    }
    // The control: A's own first sync has them.
    const own = await alice.pull({ last_pulled_at: null });
    expect(own.body.changes.captures.created.map((r: any) => r.raw_content)).to.deep.equal(["alice's secret"]);
  });

  it("a user whose sub looks like SQL or a LIKE pattern reads none of A's rows", async () => {
    for (const sub of ["' OR '1'='1", '%', 'alice%', 'ALICE', 'alice ', '*']) {
      const p = await server.client(sub).pull({ last_pulled_at: null });
      expect(p.status, sub).to.equal(200);
      for (const [t, ch] of Object.entries<any>(p.body.changes)) expect(ch, `${sub} ${t}`).to.deep.equal({ created: [], updated: [], deleted: [] });
    }
  });

  // Text sent to PostgreSQL is UTF-8: a lone surrogate would become U+FFFD, and these three subs one user_id.
  it("users whose subs differ only in a lone UTF-16 surrogate never see each other's rows: such a sub is refused", async () => {
    // PostgreSQL would store each lone surrogate as U+FFFD, making 'eve\ud800', 'eve\ud801' and
    // 'eve\ufffd' one user_id: a token whose sub has one is refused, and writes nothing.
    const before = await snapshotDb(ctx.database.db);
    for (const sub of ['eve\ud800', 'eve\ud801']) {
      const pushed = await server.client(sub).push({ changes: { ideas: { created: [{ id: 'e1', text: "first user's idea" }] } } });
      expect(pushed.status, JSON.stringify(sub)).to.equal(401);
      expect((await server.client(sub).pull({ last_pulled_at: null })).status, JSON.stringify(sub)).to.equal(401);
    }
    expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
    // The well-formed neighbour is an ordinary user with nothing of the others.
    const p = await server.client('eve\ufffd').pull({ last_pulled_at: null });
    expect(p.status).to.equal(200);
    for (const [t, ch] of Object.entries<any>(p.body.changes)) expect(ch, t).to.deep.equal({ created: [], updated: [], deleted: [] });
  });

  it("B pushing A's ids as creates leaves A's rows unchanged and gives B rows of its own", async () => {
    const bobsVersion = {
      captures: [{ id: 'c1', type: 'audio', raw_content: "bob's memo", created_at: 2000 }],
      todos: [{ id: 't1', description: "bob's todo", state: 'done', created_at: 2000 }],
      thoughts: [{ id: 'h1', capture_id: 'c1', summary: "bob's thought", created_at: 2000 }],
      ideas: [{ id: 'i1', text: "bob's idea", created_at: 2000 }],
      projects: [{ id: 'p1', name: "bob's project", archived: true, created_at: 2000 }],
    };
    const r = await bob.push({ last_pulled_at: null, changes: Object.fromEntries(Object.entries(bobsVersion).map(([t, rows]) => [t, { created: rows }])) });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.conflicts).to.deep.equal([]);

    await expectAliceUnchanged();
    for (const [t, rows] of Object.entries(bobsVersion)) {
      const stored = await storedRows(ctx.database.db, t, 'bob');
      expect(stored, t).to.have.length(1);
      expect(stored[0], t).to.deep.include({ ...rows[0], user_id: 'bob', created_at: stored[0].created_at });
      expect(Number(stored[0].created_at), t).to.equal(2000);
    }
    const bobPull = await server.client('bob', 'bob-tablet').pull({ last_pulled_at: null });
    expect(bobPull.body.changes.ideas.created.map((x: any) => x.text)).to.deep.equal(["bob's idea"]);
    expect(await ctx.database.db('sync_conflicts')).to.deep.equal([]);
  });

  it("B's update of A's id, with a stale last_pulled_at, reports no conflict and creates B's row (B learns nothing)", async () => {
    const ofAlice = await bob.push({ last_pulled_at: 1, changes: { todos: { updated: [{ id: 't1', description: "bob's", priority: 'high', _changed: 'description,priority' }] } } });
    const unused = await bob.push({ last_pulled_at: 1, changes: { todos: { updated: [{ id: 't-never-used', description: "bob's", priority: 'high', _changed: 'description,priority' }] } } });
    expect(ofAlice.status).to.equal(200);
    expect(ofAlice.body.conflicts).to.deep.equal([]);
    expect(Object.keys(ofAlice.body)).to.deep.equal(Object.keys(unused.body));
    expect(unused.body.conflicts).to.deep.equal([]);

    await expectAliceUnchanged();
    expect(await storedRow(ctx.database.db, 'todos', 'bob', 't1')).to.include({ description: "bob's", priority: 'high', state: 'todo' });
    expect(await ctx.database.db('sync_conflicts')).to.deep.equal([]);
  });

  it("B's create of A's id without a required column is refused exactly as for an unused id (B learns nothing)", async () => {
    const ofAlice = await bob.push({ changes: { captures: { created: [{ id: 'c1', type: 'text' }] } } });
    const unused = await bob.push({ changes: { captures: { created: [{ id: 'c-never-used', type: 'text' }] } } });
    expectDetails(expectError(ofAlice, 400, 'VALIDATION_FAILED'), [{ table: 'captures', id: 'c1', column: 'raw_content' }]);
    expectError(unused, 400, 'VALIDATION_FAILED');
    expect(ofAlice.body.error.details.map((d: any) => ({ ...d, id: 'x' }))).to.deep.equal(unused.body.error.details.map((d: any) => ({ ...d, id: 'x' })));
    await expectAliceUnchanged();
  });

  it("B deleting A's ids deletes nothing of A's and leaves B no tombstone", async () => {
    const r = await bob.push({ last_pulled_at: 1, changes: Object.fromEntries(Object.entries(ALICE_ROWS).map(([t, rows]) => [t, { deleted: rows.map((x) => x.id) }])) });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.conflicts).to.deep.equal([]);
    await expectAliceUnchanged();
    for (const t of Object.keys(ALICE_ROWS)) expect(await storedRows(ctx.database.db, t, 'bob'), t).to.deep.equal([]);
    const fresh = await server.client('alice', 'alice-new-phone').pull({ last_pulled_at: null });
    expect(fresh.body.changes.ideas.created.map((x: any) => x.id)).to.deep.equal(['i1']);
  });

  it("B's pull after its own push of A's id returns B's row, never A's", async () => {
    await bob.push({ changes: { ideas: { created: [{ id: 'i1', text: "bob's idea" }] } } });
    const p = await server.client('bob', 'bob-tablet').pull({ last_pulled_at: null });
    expect(p.body.changes.ideas.created).to.have.length(1);
    expect(p.body.changes.ideas.created[0]).to.include({ id: 'i1', text: "bob's idea" });
    expect(JSON.stringify(p.body)).not.to.include('alice');
  });

  for (const [where, changes] of [
    ['a created record', { ideas: { created: [{ id: 'b1', text: 'valid' }, { id: 'b2', text: 'spoofed', user_id: 'alice' }] } }],
    ['an updated record', { ideas: { created: [{ id: 'b1', text: 'valid' }], updated: [{ id: 'i1', text: 'hijacked', user_id: 'alice' }] } }],
    ['a record of a later table, after valid records of earlier tables', { captures: { created: [{ id: 'bc', type: 'text', raw_content: 'valid' }] }, projects: { updated: [{ id: 'p1', name: 'hijacked', user_id: 'alice' }] } }],
    ['a record whose user_id is null', { ideas: { created: [{ id: 'b1', text: 'valid' }, { id: 'b2', text: 'spoofed', user_id: null }] } }],
  ] as const) {
    it(`a user_id of another user in ${where} → 403 FORBIDDEN, nothing of the push written`, async () => {
      await bob.push({ changes: { todos: { created: [{ id: 'bt', description: "bob's own" }] } } });
      const before = await snapshotDb(ctx.database.db);
      const r = await bob.push({ last_pulled_at: null, changes: { ...changes, todos: { updated: [{ id: 'bt', description: 'changed in the refused push' }] } } });
      const details = expectError(r, 403, 'FORBIDDEN');
      expectDetails(details, [{ column: 'user_id' }]);
      expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
      await expectAliceUnchanged();
    });
  }

  it("a record carrying the caller's own user_id is accepted, stored under the caller, and user_id is never sent back", async () => {
    const r = await bob.push({ changes: { ideas: { created: [{ id: 'b1', text: 'mine', user_id: 'bob' }] } } });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(await storedRow(ctx.database.db, 'ideas', 'bob', 'b1')).to.include({ text: 'mine' });
    const p = await server.client('bob', 'bob-tablet').pull({ last_pulled_at: null });
    expect(p.body.changes.ideas.created).to.have.length(1);
    expect(p.body.changes.ideas.created[0]).not.to.have.property('user_id');
    await expectAliceUnchanged();
  });
});
