import { expect } from 'chai';
import { KnexRetentionStore } from '../../src/adapters/postgres/knex-retention-store';
import { tableSpec } from '../../src/domain';
import { describeEachDatabase } from '../support/databases';
import { deviceRows, openDevice, type Device } from '../support/device';
import { snapshotAll, startTestServer, type TestServer } from '../support/server';

/**
 * Retention (docs/operations.md): tombstones, sync logs, conflicts and push receipts older than
 * their retention are purged in batches; a cursor older than the newest purged tombstone is told
 * CURSOR_EXPIRED (410) on pull and on push (unless the push is a replay its receipt answers), and
 * our client then syncs that table from the start, keeping its pending changes.
 */

const DAY = 24 * 60 * 60 * 1000;

describeEachDatabase('retention', (ctx, name) => {
  let server: TestServer;
  let offset = 0;
  const devices: Device[] = [];
  beforeEach(async () => {
    offset = 0;
    // The server's clock can jump ahead; the stamps (the database's clock) stay where they were.
    server = await startTestServer(ctx.database.db, { RETENTION_INTERVAL_MINUTES: '0', RETENTION_BATCH_SIZE: '7' }, { clock: { now: () => Date.now() + offset } });
  });
  afterEach(async () => {
    for (const d of devices.splice(0)) await d.client.close().catch(() => undefined);
    await server.close();
  });
  const db = () => ctx.database.db;
  const count = async (table: string, where: Record<string, unknown> = {}) => Number((await db()(table).where(where).count<{ n: string }[]>({ n: '*' }))[0]!.n);

  async function seed(user: string) {
    const c = server.client(user, 'seeder');
    const created = Array.from({ length: 20 }, (_, i) => ({ id: `${user}-i${i}`, text: `idea ${i}` }));
    expect((await c.push({ last_pulled_at: null, push_id: `${user}-p1`, changes: { ideas: { created } } })).status).to.equal(200);
    const after = await c.pull({ last_pulled_at: 0 });
    const deleted = created.slice(0, 12).map((r) => r.id);
    expect((await c.push({ last_pulled_at: after.body.timestamp, push_id: `${user}-p2`, changes: { ideas: { deleted } } })).status).to.equal(200);
    return { cursorBeforeDeletes: after.body.timestamp as number, deleted };
  }

  it('purges only old tombstones, logs, conflicts and receipts, in batches, and moves the horizon', async () => {
    await seed('ret-a');
    await seed('ret-b');
    // A conflict recorded, and the logs of these requests written.
    const other = server.client('ret-a', 'other');
    await other.push({ last_pulled_at: 1, changes: { ideas: { updated: [{ id: 'ret-a-i15', text: 'stale edit' }] } } });
    await server.close(); // flushes the sync logs
    server = await startTestServer(ctx.database.db, { RETENTION_INTERVAL_MINUTES: '0', RETENTION_BATCH_SIZE: '7' }, { clock: { now: () => Date.now() + offset } });
    expect(await count('ideas', { _status: 'deleted' })).to.equal(24);
    expect(await count('sync_logs')).to.be.greaterThan(0);
    expect(await count('sync_conflicts')).to.be.greaterThan(0);

    // Nothing is old yet.
    expect(await server.purgeExpired()).to.deep.equal({ ran: true, tombstones: 0, sync_logs: 0, sync_conflicts: 0, sync_push_receipts: 0, sync_stats: 0 });
    const before = await snapshotAll(db());
    const logs = await count('sync_logs');

    offset = 91 * DAY;
    const report = await server.purgeExpired();
    expect(report).to.deep.include({ ran: true, tombstones: 24, sync_push_receipts: 4 });
    expect(report.sync_logs).to.equal(logs);
    expect(report.sync_conflicts).to.equal(before['sync_conflicts']!.length);
    expect(await count('ideas', { _status: 'deleted' })).to.equal(0);
    expect(await count('ideas', { _status: 'active' })).to.equal(16);
    expect(await count('sync_logs')).to.equal(0);
    expect(await count('sync_push_receipts')).to.equal(0);
    // The per-minute figures outlive the logs (400 days by default), then go too.
    expect(report.sync_stats).to.equal(0);
    const figures = (await Promise.all(['sync_stats_minutes', 'sync_stats_durations', 'sync_stats_tables', 'sync_stats_conflicts'].map((t) => count(t)))).reduce((a, b) => a + b, 0);
    expect(await count('sync_stats_conflicts')).to.be.greaterThan(0);
    expect(await count('sync_stats_tables')).to.be.greaterThan(0);
    offset = 401 * DAY;
    expect((await server.purgeExpired()).sync_stats).to.equal(figures);
    for (const t of ['sync_stats_minutes', 'sync_stats_durations', 'sync_stats_tables', 'sync_stats_conflicts']) expect(await count(t), t).to.equal(0);
    // Each user's horizon is the newest stamp of its purged tombstones.
    for (const user of ['ret-a', 'ret-b']) {
      const newestDelete = Math.max(...before['ideas']!.filter((r) => r.user_id === user && r._status === 'deleted').map((r) => Number(r.last_modified_at)));
      const row = await db()('sync_users').where({ user_id: user }).first();
      expect(Number(row.purged_through), user).to.equal(newestDelete);
    }
  });

  it('answers CURSOR_EXPIRED to a pull or push from before the horizon, and nothing else changes', async () => {
    const { cursorBeforeDeletes } = await seed('ret-c');
    const c = server.client('ret-c', 'phone');
    const current = (await c.pull({ last_pulled_at: cursorBeforeDeletes })).body.timestamp as number;
    offset = 91 * DAY;
    await server.purgeExpired();

    const pulled = await c.pull({ last_pulled_at: cursorBeforeDeletes });
    expect(pulled.status).to.equal(410);
    expect(pulled.body.error.code).to.equal('CURSOR_EXPIRED');
    expect(pulled.body.error.message).to.match(/from the start/);
    // From the start, or from after the horizon: fine.
    expect((await c.pull({ last_pulled_at: 0 })).body.changes.ideas.created).to.have.length(8);
    expect((await c.pull({ last_pulled_at: current })).status).to.equal(200);
    // A table asked for in full (a schema migration's) sends no deletes, so an old cursor does not matter for it.
    expect((await c.pull({ last_pulled_at: cursorBeforeDeletes, tables: 'ideas', migration: JSON.stringify({ from: 1, tables: ['ideas'] }) })).status).to.equal(200);

    // A push merged against rows it never saw (its receipt long gone) is refused, writing nothing.
    const snapshot = await snapshotAll(db());
    const push = await c.push({ last_pulled_at: cursorBeforeDeletes, push_id: 'late', changes: { ideas: { updated: [{ id: 'ret-c-i0', text: 'edited offline for months' }] } } });
    expect(push.status).to.equal(410);
    expect(push.body.error.code).to.equal('CURSOR_EXPIRED');
    expect(await snapshotAll(db())).to.deep.equal(snapshot);
    // The same push from a fresh cursor goes through.
    expect((await c.push({ last_pulled_at: current, push_id: 'late-2', changes: { ideas: { updated: [{ id: 'ret-c-i13', text: 'fine' }] } } })).status).to.equal(200);
  });

  it('makes our client sync the table from the start, keeping its pending changes', async () => {
    const phone = await openDevice(server, 'ret-d');
    const tablet = await openDevice(server, 'ret-d');
    devices.push(phone, tablet);
    for (let i = 0; i < 6; i++) await tablet.client.local.create('ideas', { id: `idea-${i}`, text: `idea ${i}` });
    await tablet.client.sync();
    expect((await phone.client.sync()).isOk()).to.equal(true);
    expect(await deviceRows(phone, 'ideas')).to.have.length(6);

    // The phone goes quiet and edits offline; meanwhile the tablet deletes, and time passes.
    await phone.client.local.update('ideas', 'idea-1', { text: 'edited on the phone' });
    await phone.client.local.create('ideas', { id: 'idea-new', text: 'new on the phone' });
    for (const id of ['idea-2', 'idea-3']) await tablet.client.local.delete('ideas', id);
    expect((await tablet.client.sync()).isOk()).to.equal(true);
    offset = 91 * DAY;
    expect((await server.purgeExpired()).tombstones).to.equal(2);

    const result = await phone.client.sync();
    expect(result.isOk(), JSON.stringify(result.isErr() && result.error)).to.equal(true);
    const phoneIdeas = await deviceRows(phone, 'ideas');
    expect(phoneIdeas.map((r) => r['id'])).to.deep.equal(['idea-0', 'idea-1', 'idea-4', 'idea-5', 'idea-new']);
    expect(phoneIdeas.find((r) => r['id'] === 'idea-1')).to.include({ text: 'edited on the phone' });
    expect(await phone.client.local.countPending()).to.equal(0);
    expect((await tablet.client.sync()).isOk()).to.equal(true);
    expect(await deviceRows(tablet, 'ideas')).to.deep.equal(phoneIdeas);
  });

  if (name === 'postgres') {
    it('skips a user whose push holds the lock instead of waiting on it, and runs in one process at a time', async function () {
      await seed('ret-e');
      await seed('ret-f');
      offset = 91 * DAY;
      const store = new KnexRetentionStore(db());
      const ideas = tableSpec('ideas')!;
      // ret-e's push is in flight: its sync_users row is locked by another connection.
      const other = ctx.database.openAnother!(2);
      const trx = await other.transaction();
      try {
        await trx.raw("SELECT 1 FROM sync_users WHERE user_id = 'ret-e' FOR UPDATE");
        const purged = await store.purgeTombstones(ideas, Date.now() + offset, 100);
        expect(purged._unsafeUnwrap()).to.equal(12);
        expect(await count('ideas', { user_id: 'ret-e', _status: 'deleted' })).to.equal(12);
        expect(await count('ideas', { user_id: 'ret-f', _status: 'deleted' })).to.equal(0);

        // A second store (another process) finds the job taken.
        let release!: () => void;
        const holding = new Promise<void>((r) => (release = r));
        let entered!: () => void;
        const inside = new Promise<void>((r) => (entered = r));
        const first = new KnexRetentionStore(db()).exclusively(async () => {
          entered();
          await holding;
        });
        await inside;
        expect((await new KnexRetentionStore(other).exclusively(async () => undefined))._unsafeUnwrap()).to.equal(false);
        release();
        expect((await first)._unsafeUnwrap()).to.equal(true);
      } finally {
        await trx.rollback();
        await other.destroy();
      }
      expect((await store.purgeTombstones(ideas, Date.now() + offset, 100))._unsafeUnwrap()).to.equal(12);
    });
  } else {
    it.skip('lock skipping and one process at a time need PostgreSQL: PGlite has one connection, so nothing else can hold a lock while the purge runs');
  }
});
