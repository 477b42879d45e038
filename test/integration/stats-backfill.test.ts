import { expect } from 'chai';
import type { Knex } from 'knex';
import { durationOfBucket } from '../../src/adapters/postgres/knex-sync-log';
import * as m011 from '../../src/adapters/postgres/migrations/011-sync-stats-minutes';
import { describeEachDatabase } from '../support/databases';

/**
 * Migration 011 adds the sync_logs and sync_conflicts rows written before it to the per-minute
 * aggregates, once, with the same figures the trigger keeps for rows written after it: rows are
 * written (the trigger counts them), the migration is rolled back and applied again (the
 * backfill counts them), and both are compared with figures computed here.
 */
const MIN = 60_000;
const T0 = 1_750_000_020_000; // a whole minute

interface Log {
  sync_type: 'pull' | 'push';
  started_at: number;
  duration_ms: number;
  status: 'success' | 'failure';
  records: Record<string, number>;
}

const logs: Log[] = Array.from({ length: 60 }, (_, i) => ({
  sync_type: i % 3 ? 'pull' : 'push',
  started_at: T0 + Math.floor(i / 7) * MIN + (i * 7919) % MIN,
  duration_ms: (i * i * 37) % 4000,
  status: i % 5 === 0 ? 'failure' : 'success',
  records: i % 4 ? { todos: i % 11, ideas: 1 } : ({} as Record<string, number>),
}));

const dump = async (db: Knex, table: string, order: string) => (await db.raw(`SELECT * FROM ${table} ORDER BY ${order}`)).rows.map((r: Record<string, unknown>) => JSON.stringify(r));

const tables: Array<[string, string]> = [
  ['sync_stats_minutes', 'minute_start, sync_type'],
  ['sync_stats_durations', 'minute_start, sync_type, bucket'],
  ['sync_stats_tables', 'minute_start, sync_type, table_name'],
];

async function check(db: Knex): Promise<void> {
  const row = (l: (typeof logs)[number], i: number) => ({
    user_id: `u${i % 4}`, sync_type: l.sync_type, started_at: l.started_at, completed_at: l.started_at + l.duration_ms, duration_ms: l.duration_ms,
    records_synced: Object.values(l.records).reduce((a, b) => a + b, 0), records_by_table: JSON.stringify(l.records), conflicts: 0,
    bytes_in: i * 10, bytes_out: i * 100, status: l.status, error_code: null, error_message: null,
  });
  await db('sync_logs').insert(logs.map(row).filter((_, i) => i % 2 === 0));
  // A second statement, as a second batch would be.
  await db('sync_logs').insert(logs.map(row).filter((_, i) => i % 2 === 1));
  const kept = await Promise.all(tables.map(([t, o]) => dump(db, t, o)));
  await db('sync_conflicts').insert(
    [0, 1, 2, MIN + 5, 3 * MIN].map((dt, i) => ({
      user_id: 'u0', resolved_at: T0 + dt, entity: i % 2 ? 'todos' : 'ideas', record_id: `r${i}`, conflict_type: 'update_update', resolution_strategy: 'per_column', client_columns: '[]', server_columns: '[]',
    })),
  );
  await m011.down(db);
  await m011.up(db);
  expect(await Promise.all(tables.map(([t, o]) => dump(db, t, o))), 'the backfill gives what the trigger kept').to.deep.equal(kept);
  expect(kept[2]!.length).to.be.above(10);

  // Exact per-minute figures, computed here from the rows.
  const minutes = new Map<string, { count: number; failures: number; duration: number; records: number; bytes_in: number; bytes_out: number }>();
  logs.forEach((l, i) => {
    const key = `${l.started_at - (l.started_at % MIN)}/${l.sync_type}`;
    const m = minutes.get(key) ?? { count: 0, failures: 0, duration: 0, records: 0, bytes_in: 0, bytes_out: 0 };
    m.count += 1;
    m.failures += l.status === 'failure' ? 1 : 0;
    m.duration += l.duration_ms;
    m.records += Object.values(l.records).reduce((a, b) => a + b, 0);
    m.bytes_in += i * 10;
    m.bytes_out += i * 100;
    minutes.set(key, m);
  });
  const rows = (await db('sync_stats_minutes').select()).map((r) => [`${r.minute_start}/${r.sync_type}`, { count: Number(r.count), failures: Number(r.failures), duration: Number(r.sum_duration_ms), records: Number(r.records), bytes_in: Number(r.bytes_in), bytes_out: Number(r.bytes_out) }] as const);
  expect(new Map(rows)).to.deep.equal(minutes);
  expect(minutes.size).to.be.above(10);
  const histogram = (await db.raw('SELECT minute_start, sync_type, sum(count) AS n FROM sync_stats_durations GROUP BY 1, 2')).rows as Array<Record<string, unknown>>;
  expect(new Map(histogram.map((h) => [`${String(h['minute_start'])}/${String(h['sync_type'])}`, Number(h['n'])]))).to.deep.equal(new Map([...minutes].map(([k, m]) => [k, m.count])));
  const conflicts = (await db('sync_stats_conflicts').select().orderBy(['minute_start', 'entity'])).map((c) => [Number(c.minute_start) - T0, c.entity, Number(c.count)]);
  expect(conflicts).to.deep.equal([
    [0, 'ideas', 2],
    [0, 'todos', 1],
    [MIN, 'todos', 1],
    [3 * MIN, 'ideas', 1],
  ]);

}

describeEachDatabase('migration 011: the per-minute aggregates of the rows written before it', (ctx) => {
  it('match the rows, and what the trigger keeps', async () => {
    await check(ctx.database.db);
  });

  it("report every duration's bucket within the bound the docs state: exact under 20 ms, within 5 % above", async () => {
    // Every whole ms up to 20 minutes, and int4's largest: each bucket's shortest and longest.
    const { rows } = (await ctx.database.db.raw(
      `SELECT sync_duration_bucket(d) AS b, min(d) AS lo, max(d) AS hi FROM (SELECT generate_series(0, 1200000) AS d UNION ALL SELECT 2147483647) s GROUP BY 1 ORDER BY 1`,
    )) as { rows: Array<{ b: number; lo: number; hi: number }> };
    expect(rows.length).to.be.above(130);
    expect(rows.map((r) => r.b)).to.include.members(Array.from({ length: 20 }, (_, i) => i));
    for (const { b, lo, hi } of rows) {
      const reported = durationOfBucket(b);
      if (lo < 20) expect([lo, hi, reported], `bucket ${b}`).to.deep.equal([b, b, b]);
      else for (const d of [lo, hi]) expect(Math.abs(reported - d), `bucket ${b}: ${reported} for ${d}`).to.be.at.most(0.05 * d);
    }
  });
});
