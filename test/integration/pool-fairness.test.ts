import { expect } from 'chai';
import type { Knex } from 'knex';
import { describeEachDatabase } from '../support/databases';
import { send } from '../support/http-helpers';
import { startTestServer, type TestServer } from '../support/server';

/**
 * Issue 20, item 6: N parallel pushes of one user each took a pool connection and waited on that
 * user's row lock with no lock_timeout, so other users got 503 (or waited as long as the lock).
 * Now one push per user is in flight per process (SYNC_PUSH_QUEUE_PER_USER more wait without a
 * connection, the rest get 429 with Retry-After), the push transaction has a lock_timeout and a
 * statement_timeout, and /readyz asks the database at most once a second.
 */
describeEachDatabase('one user cannot hold the pool', (ctx, name) => {
  let server: TestServer | undefined;
  let pool: Knex | undefined;
  afterEach(async () => {
    await server?.close();
    await pool?.destroy();
    server = undefined;
    pool = undefined;
  });

  it("another user's push succeeds while one user's pushes pile up behind that user's lock (pool of 3)", async function () {
    if (name !== 'postgres') {
      this.skip(); // PGlite has a single connection and no second session to hold a user's lock from outside.
    }
    this.timeout(60_000);
    pool = ctx.database.openAnother!(3);
    server = await startTestServer(pool, { SYNC_LOCK_TIMEOUT_MS: '20000', SYNC_PUSH_QUEUE_PER_USER: '2' });
    const hog = server.client('hog');
    expect((await hog.push({ changes: { ideas: { created: [{ id: 'seed', text: 'x' }] } } })).status).to.equal(200);

    // Another session holds the hog's lock, as a long push of the hog would.
    const holder = ctx.database.openAnother!(1);
    const trx = await holder.transaction();
    try {
      await trx.raw('SELECT 1 FROM sync_users WHERE user_id = ? FOR UPDATE', ['hog']);
      const pushes = Array.from({ length: 8 }, (_, i) => hog.push({ changes: { ideas: { created: [{ id: `h${i}`, text: 'x' }] } } }));
      // Wait until a push of the hog waits on the lock (before the fix, three did: the whole pool).
      const deadline = Date.now() + 20_000;
      for (;;) {
        const waiting = await ctx.database.db.raw("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND locktype IN ('transactionid', 'tuple')");
        if (waiting.rows[0].n >= 1) break;
        if (Date.now() > deadline) throw new Error('no push of the hog ever waited on its lock');
        await new Promise((r) => setTimeout(r, 25));
      }
      const other = await server.client('bystander').push({ changes: { ideas: { created: [{ id: 'b1', text: 'mine' }] } } }, {}, AbortSignal.timeout(15_000));
      expect(other.status, JSON.stringify(other.body)).to.equal(200);
      await trx.rollback();
      const answers = await Promise.all(pushes);
      const statuses = answers.map((a) => a.status);
      // One in flight and two waiting get through; the other five were told to come back.
      expect(statuses.filter((s) => s === 200)).to.have.length(3);
      for (const a of answers.filter((x) => x.status !== 200)) {
        expect(a.status).to.equal(429);
        expect(a.body.error.code).to.equal('RATE_LIMITED');
        expect(Number(a.headers.get('retry-after'))).to.be.at.least(1);
      }
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
      await holder.destroy();
    }
  });

  it('a push that waits on its lock longer than SYNC_LOCK_TIMEOUT_MS gives up with 503 UNAVAILABLE, writing nothing', async function () {
    if (name !== 'postgres') this.skip(); // As above: no second session on PGlite.
    this.timeout(60_000);
    server = await startTestServer(ctx.database.db, { SYNC_LOCK_TIMEOUT_MS: '300' });
    const holder = ctx.database.openAnother!(1);
    const trx = await holder.transaction();
    try {
      await trx.raw("INSERT INTO sync_users (user_id, last_ts) VALUES ('stuck', 0)");
      const r = await server.client('stuck').push({ changes: { ideas: { created: [{ id: 'i', text: 'x' }] } } }, {}, AbortSignal.timeout(15_000));
      expect(r.status).to.equal(503);
      expect(r.body.error.code).to.equal('UNAVAILABLE');
    } finally {
      await trx.rollback();
      await holder.destroy();
    }
    expect(await ctx.database.db('ideas').where({ user_id: 'stuck' })).to.have.length(0);
  });

  it('/readyz asks the database at most once per second under many calls', async () => {
    let now = Date.now();
    server = await startTestServer(ctx.database.db, {}, { clock: { now: () => now } });
    let pings = 0;
    const count = (q: { sql: string }) => void (/^select 1$/i.test(q.sql.trim()) && pings++);
    ctx.database.db.on('query', count);
    try {
      const answers = await Promise.all(Array.from({ length: 100 }, () => send(`${server!.url}/readyz`)));
      for (let i = 0; i < 50; i++) answers.push(await send(`${server!.url}/readyz`));
      expect(answers.every((a) => a.status === 200)).to.equal(true);
      expect(pings).to.equal(1);
      now += 1000;
      expect((await send(`${server!.url}/readyz`)).status).to.equal(200);
      expect(pings).to.equal(2);
    } finally {
      ctx.database.db.off('query', count);
    }
  });
});
