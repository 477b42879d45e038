import { expect } from 'chai';
import { ResultAsync } from 'neverthrow';
import { KnexChangeStore } from '../../src/adapters/postgres/knex-change-store';
import { KnexRetentionStore } from '../../src/adapters/postgres/knex-retention-store';
import { TABLES, tableSpec } from '../../src/domain';
import { databaseNames, getDatabase } from '../support/databases';
import { until } from '../support/until';
import { runChangeStoreContract, type RecordedConflict } from './change-store.contract';

// The second subject writes with the statements it uses on Citus (multi-row VALUES lists, which
// Citus routes to the user's node; docs/scaling.md), which no CI database would choose by itself.
for (const [name, citusStatements] of databaseNames().flatMap((n) => [[n, false] as const, [n, true] as const])) {
  runChangeStoreContract(`KnexChangeStore${citusStatements ? ', Citus statements,' : ''} [${name}]`, async () => {
    const database = await getDatabase(name);
    await database.reset();
    return {
      store: new KnexChangeStore(database.db, null, undefined, { citusStatements }),
      blocked: () =>
        until(async () =>
          name === 'pglite'
            ? (database.db.client as { pool: { numPendingAcquires(): number } }).pool.numPendingAcquires() > 0
            : Number(
                (
                  await database.db.raw(
                    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND pid <> pg_backend_pid()",
                  )
                ).rows[0].n,
              ) > 0,
        ),
      purgeTombstones: async (beforeMs) => {
        const retention = new KnexRetentionStore(database.db);
        for (const table of TABLES) (await retention.purgeTombstones(table, beforeMs, 1000))._unsafeUnwrap();
      },
      conflicts: async (userId): Promise<RecordedConflict[]> => {
        const rows = await database.db('sync_conflicts').where({ user_id: userId }).orderBy('id');
        return rows.map((r: Record<string, unknown>) => ({
          table: r['entity'] as string,
          id: r['record_id'] as string,
          type: r['conflict_type'] as RecordedConflict['type'],
          resolution: r['resolution_strategy'] as RecordedConflict['resolution'],
          clientColumns: r['client_columns'] as string[],
          serverColumns: r['server_columns'] as string[],
          resolvedAt: Number(r['resolved_at']),
        }));
      },
    };
  });
}

describe('KnexChangeStore on PostgreSQL: a push whose connection dies', function () {
  // PGlite runs in this process: its one connection cannot be cut from outside.
  if (!process.env['DATABASE_URL']) {
    it.skip('needs PostgreSQL (DATABASE_URL): PGlite has no connection to cut');
    return;
  }

  it('answers UNAVAILABLE, keeps nothing of it, and the next push runs on a sound connection', async () => {
    const database = await getDatabase('postgres');
    await database.reset();
    const db = database.openAnother!(2);
    const killer = database.openAnother!(1);
    try {
      const store = new KnexChangeStore(db);
      const ideas = tableSpec('ideas')!;
      const row = (id: string) => ({ id, values: { thought_id: null, text: id, created_at: 1 }, deleted: false });
      const cut = await store.inPushTransaction('cut', (t) =>
        t.writeRows(ideas, [row('lost')], 'phone').andThen(() =>
          // The push's backend is the one idle in a transaction whose last statement wrote ideas.
          ResultAsync.fromSafePromise(
            killer.raw(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle in transaction' AND datname = current_database() AND query LIKE '%INSERT INTO "ideas"%'`),
          ).andThen(() => t.cursor()),
        ),
      );
      expect(cut.isErr()).to.equal(true);
      expect(cut._unsafeUnwrapErr().code).to.equal('UNAVAILABLE');
      // Both pool connections serve pushes again: the dead one was destroyed, not handed out.
      for (const id of ['kept-1', 'kept-2']) {
        const done = await store.inPushTransaction('cut', (t) => t.writeRows(ideas, [row(id)], 'phone').andThen(() => t.cursor()));
        expect(done.isOk(), JSON.stringify(done)).to.equal(true);
      }
      expect((await database.db('ideas').where({ user_id: 'cut' }).orderBy('id').pluck('id')) as string[]).to.deep.equal(['kept-1', 'kept-2']);
    } finally {
      await db.destroy();
      await killer.destroy();
    }
  });
});
