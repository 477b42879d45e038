import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { expectDetails, expectError, snapshotDb } from '../support/http-helpers';
import { startTestServer, storedRow, storedRows, type ApiClient, type TestServer } from '../support/server';

/**
 * Idempotent and atomic pushes (spec §4.2): a push with a `push_id` replayed with the same body
 * answers as the first time and writes nothing; with a different body it is refused; and a push
 * is applied whole or not at all.
 */
describeEachDatabase('push idempotency and atomicity', (ctx) => {
  const DAY = 24 * 60 * 60 * 1000;
  let server: TestServer;
  let clocked: TestServer;
  let clockOffset = 0;
  let phone: ApiClient;
  let laptop: ApiClient;
  before(async () => {
    server = await startTestServer(ctx.database.db);
    clocked = await startTestServer(ctx.database.db, {}, { clock: { now: () => Date.now() + clockOffset } });
  });
  after(async () => {
    await Promise.all([server, clocked].filter(Boolean).map((s) => s.close()));
  });
  beforeEach(() => {
    clockOffset = 0;
    phone = server.client('ana', 'phone');
    laptop = server.client('ana', 'laptop');
  });

  /** A push that creates a row and resolves a conflict, so a second application would show (new stamps, a second conflict row). */
  async function conflictingPush(): Promise<{ body: Record<string, unknown>; cursor: number }> {
    const seeded = await phone.push({ changes: { todos: { created: [{ id: 't1', description: 'file taxes' }] } } });
    expect(seeded.status).to.equal(200);
    const cursor = seeded.body.timestamp;
    expect((await laptop.push({ last_pulled_at: cursor, changes: { todos: { updated: [{ id: 't1', priority: 'high' }] } } })).status).to.equal(200);
    return {
      cursor,
      body: {
        last_pulled_at: cursor,
        push_id: 'batch-1',
        changes: { todos: { created: [{ id: 't2', description: 'new' }], updated: [{ id: 't1', state: 'done', priority: 'low' }] }, ideas: { created: [{ id: 'i1', text: 'x' }] } },
      },
    };
  }

  it('a replay with the same push_id and body answers the first answer and writes nothing (no new stamps, no second conflict row)', async () => {
    const { body } = await conflictingPush();
    const first = await phone.push(body);
    expect(first.status, JSON.stringify(first.body)).to.equal(200);
    expect(first.body.conflicts).to.deep.equal([{ table: 'todos', id: 't1', type: 'update_update', resolution: 'per_column', client_columns: ['state'], server_columns: ['priority'] }]);
    const afterFirst = await snapshotDb(ctx.database.db);
    expect(afterFirst['sync_conflicts']).to.have.length(1);

    const replay = await phone.push(body);
    expect(replay.status).to.equal(200);
    expect(replay.body).to.deep.equal(first.body);
    expect(await snapshotDb(ctx.database.db)).to.deep.equal(afterFirst);

    // The retry comes from the device that pushed: it pulls nothing new because of it.
    const pulled = await phone.pull({ last_pulled_at: first.body.timestamp });
    for (const [t, ch] of Object.entries<any>(pulled.body.changes)) expect(ch, t).to.deep.equal({ created: [], updated: [], deleted: [] });
  });

  it('a replay with the keys in another order and other whitespace is the same body: the first answer, nothing written', async () => {
    const { body } = await conflictingPush();
    const first = await phone.push(body);
    const afterFirst = await snapshotDb(ctx.database.db);
    const reordered = `{ "changes": { "ideas": { "created": [ { "text": "x", "id": "i1" } ] },
      "todos": { "updated": [ { "priority": "low", "state": "done", "id": "t1" } ], "created": [ { "description": "new", "id": "t2" } ] } },
      "push_id": "batch-1", "last_pulled_at": ${body['last_pulled_at']} }`;
    const replay = await phone.push(reordered);
    expect(replay.status, JSON.stringify(replay.body)).to.equal(200);
    expect(replay.body).to.deep.equal(first.body);
    expect(await snapshotDb(ctx.database.db)).to.deep.equal(afterFirst);
  });

  it('a late replay, after another push changed the row, answers the first answer and does not undo the later change', async () => {
    const { body } = await conflictingPush();
    const first = await phone.push(body);
    const later = await laptop.push({ last_pulled_at: first.body.timestamp, changes: { todos: { updated: [{ id: 't1', state: 'abandoned' }] } } });
    expect(later.status).to.equal(200);
    const afterLater = await snapshotDb(ctx.database.db);

    const replay = await phone.push(body);
    expect(replay.body).to.deep.equal(first.body);
    expect(await snapshotDb(ctx.database.db)).to.deep.equal(afterLater);
    expect(await storedRow(ctx.database.db, 'todos', 'ana', 't1')).to.include({ state: 'abandoned' });
  });

  it('two copies of one push sent at once are applied once and get the same answer', async () => {
    const body = { push_id: 'twins', changes: { ideas: { created: Array.from({ length: 50 }, (_, i) => ({ id: `i${i}`, text: `idea ${i}` })) } } };
    const [a, b] = await Promise.all([phone.push(body), phone.push(body)]);
    expect(a.status, JSON.stringify(a.body)).to.equal(200);
    expect(b.status, JSON.stringify(b.body)).to.equal(200);
    expect(b.body).to.deep.equal(a.body);
    const rows = await storedRows(ctx.database.db, 'ideas', 'ana');
    expect(rows).to.have.length(50);
    // A second application would have stamped every row again, above the first answer's cursor.
    for (const r of rows) expect(Number(r.last_modified_at)).to.be.at.most(a.body.timestamp);
    expect(await ctx.database.db('sync_push_receipts').where({ user_id: 'ana' })).to.have.length(1);
  });

  for (const [what, change] of [
    ['a different record value', (b: any) => ({ ...b, changes: { ...b.changes, ideas: { created: [{ id: 'i1', text: 'y' }] } } })],
    ['a different last_pulled_at', (b: any) => ({ ...b, last_pulled_at: b.last_pulled_at + 1 })],
    ['one more record', (b: any) => ({ ...b, changes: { ...b.changes, projects: { created: [{ id: 'p1', name: 'extra' }] } } })],
  ] as const) {
    it(`the same push_id with ${what} → 409 PUSH_ID_REUSED, nothing written`, async () => {
      const { body } = await conflictingPush();
      expect((await phone.push(body)).status).to.equal(200);
      const before = await snapshotDb(ctx.database.db);
      const reused = await phone.push(change(body));
      expectError(reused, 409, 'PUSH_ID_REUSED');
      expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
    });
  }

  it('the same push_id from two users is two independent pushes', async () => {
    const ana = await phone.push({ push_id: 'shared-id', changes: { ideas: { created: [{ id: 'i1', text: "ana's" }] } } });
    const ben = await server.client('ben', 'phone').push({ push_id: 'shared-id', changes: { projects: { created: [{ id: 'p1', name: "ben's" }] } } });
    expect(ana.status).to.equal(200);
    expect(ben.status, JSON.stringify(ben.body)).to.equal(200);
    expect(await ctx.database.db('projects').where({ user_id: 'ben', id: 'p1' }).first()).to.include({ name: "ben's" });
    expect(await storedRows(ctx.database.db, 'ideas', 'ben')).to.deep.equal([]);
    expect(await storedRows(ctx.database.db, 'projects', 'ana')).to.deep.equal([]);

    // Each replay gets its own user's first answer.
    const before = await snapshotDb(ctx.database.db);
    expect((await server.client('ben', 'phone').push({ push_id: 'shared-id', changes: { projects: { created: [{ id: 'p1', name: "ben's" }] } } })).body).to.deep.equal(ben.body);
    expect((await phone.push({ push_id: 'shared-id', changes: { ideas: { created: [{ id: 'i1', text: "ana's" }] } } })).body).to.deep.equal(ana.body);
    expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
  });

  it('a push_id is remembered for 24 hours and forgotten after', async () => {
    const device = clocked.client('ana', 'phone');
    const body = { push_id: 'daily', changes: { ideas: { created: [{ id: 'i1', text: 'x' }] } } };
    const first = await device.push(body);
    expect(first.status).to.equal(200);

    clockOffset = DAY - 60_000;
    const before = await snapshotDb(ctx.database.db);
    expect((await device.push(body)).body).to.deep.equal(first.body);
    expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);

    clockOffset = DAY + 60_000;
    const afterADay = await device.push(body);
    expect(afterADay.status).to.equal(200);
    expect(afterADay.body.timestamp).to.be.greaterThan(first.body.timestamp);
    const [row] = await storedRows(ctx.database.db, 'ideas', 'ana');
    expect(Number(row.last_modified_at)).to.equal(afterADay.body.timestamp);
  });

  describe('atomicity', () => {
    const valid = {
      captures: { created: [{ id: 'c1', type: 'text', raw_content: 'valid' }] },
      todos: { created: [{ id: 't9', description: 'valid' }], updated: [{ id: 't1', state: 'done' }], deleted: [] as string[] },
      projects: { created: [{ id: 'p1', name: 'valid' }] },
    };

    beforeEach(async () => {
      expect((await phone.push({ changes: { todos: { created: [{ id: 't1', description: 'seed' }, { id: 't2', description: 'seed' }] } } })).status).to.equal(200);
    });

    async function expectNothingWritten(body: unknown, status: number, code: string, detail: Record<string, string>): Promise<void> {
      const before = await snapshotDb(ctx.database.db);
      const r = await phone.push(body);
      expectDetails(expectError(r, status, code), [detail]);
      expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
    }

    it('valid records in three tables plus one with an unknown column → 400, none of them written', async () => {
      await expectNothingWritten(
        { changes: { ...valid, todos: { ...valid.todos, deleted: ['t2'] }, ideas: { created: [{ id: 'i1', text: 'ok', mood: 'happy' }] } } },
        400,
        'VALIDATION_FAILED',
        { table: 'ideas', id: 'i1', column: 'mood' },
      );
    });

    it('valid records plus a capture created without raw_content (a required column) → 400 naming it, none written', async () => {
      await expectNothingWritten(
        { changes: { ...valid, todos: { ...valid.todos, deleted: ['t2'] }, captures: { created: [...valid.captures.created, { id: 'c2', type: 'audio' }] } } },
        400,
        'VALIDATION_FAILED',
        { table: 'captures', id: 'c2', column: 'raw_content' },
      );
    });

    it('valid records plus a todo created without description, found only once the server has loaded the rows → 400, none written', async () => {
      // t1 exists, so its partial record is an update; t3 does not, so the same shape is a create missing a column.
      await expectNothingWritten(
        { changes: { ...valid, todos: { updated: [{ id: 't1', state: 'done' }, { id: 't3', state: 'done' }], deleted: ['t2'] } } },
        400,
        'VALIDATION_FAILED',
        { table: 'todos', id: 't3', column: 'description' },
      );
    });

    it("a new user's first push whose last table fails once the rows of every table were loaded → 400 over HTTP, and the database is as before (no sync_users row either)", async () => {
      // The first push of a user takes the user's lock by creating its sync_users row, then loads
      // captures, todos and projects; only then is p2 (no such row: a create without name) refused.
      // A store that committed on the use case's error would leave that row behind.
      const newcomer = server.client('newcomer', 'phone');
      const body = { push_id: 'first', changes: { captures: valid.captures, todos: { created: valid.todos.created }, projects: { created: valid.projects.created, updated: [{ id: 'p2', color: 'red' }] } } };
      const before = await snapshotDb(ctx.database.db);
      expectDetails(expectError(await newcomer.push(body), 400, 'VALIDATION_FAILED'), [{ table: 'projects', id: 'p2', column: 'name' }]);
      expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
      // The control: without p2 the same push is applied, and the user's row is made.
      const ok = await newcomer.push({ ...body, changes: { ...body.changes, projects: valid.projects } });
      expect(ok.status, JSON.stringify(ok.body)).to.equal(200);
      expect(await ctx.database.db('sync_users').where({ user_id: 'newcomer' })).to.have.length(1);
      expect(await storedRows(ctx.database.db, 'projects', 'newcomer')).to.have.length(1);
    });

    it('a rejected push does not use up its push_id: the corrected push with the same id is applied', async () => {
      const bad = { push_id: 'fix-me', changes: { ...valid, captures: { created: [{ id: 'c2', type: 'audio' }] } } };
      await expectNothingWritten(bad, 400, 'VALIDATION_FAILED', { table: 'captures', id: 'c2', column: 'raw_content' });
      const fixed = await phone.push({ push_id: 'fix-me', changes: { ...valid, captures: { created: [{ id: 'c2', type: 'audio', raw_content: 'memo.m4a' }] } } });
      expect(fixed.status, JSON.stringify(fixed.body)).to.equal(200);
      expect(await storedRows(ctx.database.db, 'captures', 'ana')).to.have.length(1);
      expect(await storedRow(ctx.database.db, 'todos', 'ana', 't1')).to.include({ state: 'done' });
    });

    it('a push that fails in the database after earlier tables were written → 500 INTERNAL, and nothing of it is left', async () => {
      // A fault injected at the database: a trigger refusing one idea (by id: its text is encrypted). Captures and todos are
      // written before ideas (priority order), so only a rollback can take them back.
      await ctx.database.db.raw(`CREATE FUNCTION test_injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.id = 'i2' THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$`);
      await ctx.database.db.raw('CREATE TRIGGER ideas_injected_fault BEFORE INSERT OR UPDATE ON ideas FOR EACH ROW EXECUTE FUNCTION test_injected_fault()');
      try {
        const before = await snapshotDb(ctx.database.db);
        const r = await phone.push({ changes: { ...valid, todos: { ...valid.todos, deleted: ['t2'] }, ideas: { created: [{ id: 'i1', text: 'fine' }, { id: 'i2', text: 'boom' }] } } });
        expectError(r, 500, 'INTERNAL');
        expect(JSON.stringify(r.body)).not.to.include('injected fault');
        expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
      } finally {
        await ctx.database.db.raw('DROP TRIGGER IF EXISTS ideas_injected_fault ON ideas');
        await ctx.database.db.raw('DROP FUNCTION IF EXISTS test_injected_fault()');
      }
      // The same push without the fault is applied whole: the control for the rollback above.
      const ok = await phone.push({ changes: { ...valid, todos: { ...valid.todos, deleted: ['t2'] }, ideas: { created: [{ id: 'i1', text: 'fine' }, { id: 'i2', text: 'boom' }] } } });
      expect(ok.status, JSON.stringify(ok.body)).to.equal(200);
      expect(await storedRows(ctx.database.db, 'ideas', 'ana')).to.have.length(2);
      expect(await storedRows(ctx.database.db, 'captures', 'ana')).to.have.length(1);
    });
  });
});
