import { expect } from 'chai';
import type { Knex } from 'knex';
import { KnexChangeStore } from '../../src/adapters/postgres/knex-change-store';
import { tableSpec } from '../../src/domain';
import { describeEachDatabase } from '../support/databases';

/**
 * The push's id lookup probes the primary key (user_id, id) even when the table's statistics call
 * the pushing user small (a new user, or one grown since the last ANALYZE). Planned for that user,
 * PostgreSQL took the (user_id, last_modified_at) index and filtered on id, a scan of all the
 * user's rows per id: 100,000 new records of one user took 64-69 s instead of 5 s in the bench.
 * Nor does a plan made while the table was empty outlive its growth (the second test). The lookup is
 * `user_id = ? AND id = ANY(?)`, planned generic (FORCE_GENERIC_PLANS in the store).
 * Checked through the index's scan counter, on one connection so its statistics can be flushed.
 */
describeEachDatabase('push lookup plan', (ctx, name) => {
  if (name !== 'postgres') {
    it.skip('needs PostgreSQL: the test opens a second connection to flush the index statistics it counts, which PGlite (one connection) cannot');
    return;
  }

  let db: Knex;
  beforeEach(async () => {
    db = ctx.database.openAnother!(1);
    // Other users' rows, analyzed: the statistics know them, not the user who pushes next.
    await db.raw(`INSERT INTO captures (user_id, id, created_at, type, raw_content)
      SELECT 'other-' || (n % 20), 'c' || n, 1, 'text', 'x' FROM generate_series(1, 4000) AS n`);
    await db.raw('ANALYZE captures');
  });
  afterEach(async () => {
    await db.destroy();
  });

  /** Index scans so far, after this (only) connection has flushed its statistics. */
  const scans = async (index: string): Promise<number> => {
    await db.raw('SELECT pg_stat_force_next_flush()');
    await db.raw('SELECT 1');
    const [row] = (await db.raw('SELECT idx_scan FROM pg_stat_user_indexes WHERE schemaname = current_schema() AND indexrelname = ?', [index])).rows as Array<{ idx_scan: string }>;
    return Number(row?.idx_scan ?? NaN);
  };

  it('probes the primary key for every id, not the (user_id, last_modified_at) index', async () => {
    const store = new KnexChangeStore(db);
    const captures = tableSpec('captures')!;
    const ids = Array.from({ length: 50 }, (_, i) => `new-${i}`);
    const before = { byStamp: await scans('captures_user_id_last_modified_at_index'), byKey: await scans('captures_pkey') };
    // Several pushes: PostgreSQL plans a named statement for its arguments on the first five calls.
    for (let i = 0; i < 7; i++) {
      const loaded = await store.inPushTransaction('newcomer', (tx) => tx.loadRows(captures, ids));
      expect(loaded.isOk() && loaded.value.size).to.equal(0);
    }
    const after = { byStamp: await scans('captures_user_id_last_modified_at_index'), byKey: await scans('captures_pkey') };
    expect(after.byStamp - before.byStamp, 'scans of (user_id, last_modified_at)').to.equal(0);
    expect(after.byKey - before.byKey, 'probes of the primary key').to.be.at.least(7 * ids.length);
  });

  it('still probes the primary key after the table grew from empty on the same connection', async () => {
    // A new deployment: the first push plans its lookup while captures is empty and has no
    // statistics, where both indexes cost the same. That plan, kept for the connection's life,
    // made every later probe scan all of the user's rows: seeding 100,000 records of one user took
    // 7 minutes instead of 4 s. A temporary captures (no statistics, never analyzed) stands for it.
    // Planned anew for each push, the lookup (`id = ANY(…)`) reads a small user's rows through
    // (user_id, last_modified_at) while that costs less (EXPLAIN, without statistics: at 4,000 rows,
    // about a millisecond's read; no longer at 20,000); the growth here is past that point.
    const schema = ((await db.raw('SELECT current_schema() AS s')).rows as Array<{ s: string }>)[0]!.s;
    await db.raw(`CREATE TEMP TABLE captures (LIKE "${schema}".captures INCLUDING ALL)`);
    const indexScans = async (): Promise<{ byKey: number; byStamp: number }> => {
      await db.raw('SELECT pg_stat_force_next_flush()');
      await db.raw('SELECT 1');
      const rows = (await db.raw(`SELECT i.indisprimary AS pk, s.idx_scan FROM pg_stat_all_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid WHERE s.relid = 'pg_temp.captures'::regclass AND i.indpred IS NULL`)).rows as Array<{ pk: boolean; idx_scan: string }>;
      // The primary key and (user_id, last_modified_at); the partial index of tombstones (retention) aside.
      expect(rows).to.have.length(2);
      return { byKey: Number(rows.find((r) => r.pk)!.idx_scan), byStamp: Number(rows.find((r) => !r.pk)!.idx_scan) };
    };
    const store = new KnexChangeStore(db);
    const captures = tableSpec('captures')!;
    const ids = Array.from({ length: 50 }, (_, i) => `c${i * 7 + 1}`);
    for (let i = 0; i < 7; i++) await store.inPushTransaction('grower', (tx) => tx.loadRows(captures, ids));
    await db.raw(`INSERT INTO pg_temp.captures (user_id, id, created_at, last_modified_at, first_written_at, type, raw_content)
      SELECT 'grower', 'c' || n, 1, n, n, 'text', 'x' FROM generate_series(1, 40000) AS n`);
    const before = await indexScans();
    const loaded = await store.inPushTransaction('grower', (tx) => tx.loadRows(captures, ids));
    expect(loaded.isOk() && loaded.value.size).to.equal(ids.length);
    const after = await indexScans();
    expect(after.byStamp - before.byStamp, 'scans of (user_id, last_modified_at)').to.equal(0);
    expect(after.byKey - before.byKey, 'probes of the primary key').to.be.at.least(ids.length);
  });
});
