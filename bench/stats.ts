import type { Knex } from 'knex';
import { openDatabase } from '../src/adapters/postgres/connection';
import { KnexSyncLogStore } from '../src/adapters/postgres/knex-sync-log';
import { migrateToLatest } from '../src/adapters/postgres/migrations';
import type { SyncLogEntry } from '../src/application/ports';
import { databaseUrl } from './server-process';
import { elapsed, report } from './support';

/**
 * `npm run bench -- stats`: the admin statistics over a day of a million sync_logs rows, read the
 * way they were read before migration 011 (every log row of the window: percentile_cont,
 * jsonb_each_text) and from the per-minute aggregates; and what the aggregates cost the log
 * writer (a batch of 500 entries with the trigger and without). On PostgreSQL (DATABASE_URL) in a
 * schema of its own, dropped at the end; else on an in-memory PGlite.
 */
const ROWS = Number(process.env['BENCH_STATS_ROWS'] ?? 1_000_000);
const DAY = 86_400_000;
const RUNS = 5;

/** The queries of stats() and series() before migration 011, kept here to compare. */
async function beforeStats(db: Knex, since: number, until: number): Promise<void> {
  await db.raw(
    `SELECT sync_type, count(*) AS count, avg(CASE WHEN status = 'success' THEN 1.0 ELSE 0.0 END) AS success_rate, avg(duration_ms) AS avg_duration_ms,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_duration_ms, sum(records_synced) AS records, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out
       FROM sync_logs WHERE started_at >= ? AND started_at < ? GROUP BY sync_type`,
    [since, until],
  );
  await db.raw(`SELECT entity, conflict_type, count(*) FROM sync_conflicts WHERE resolved_at >= ? AND resolved_at < ? GROUP BY 1, 2`, [since, until]);
}

async function beforeSeries(db: Knex, from: number, to: number, bucket: number): Promise<void> {
  await db.raw(
    `SELECT (started_at - ?::bigint) / ?::bigint AS index, sync_type, count(*) AS count, count(*) FILTER (WHERE status = 'failure') AS failures,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95, sum(records_synced) AS records
       FROM sync_logs WHERE started_at >= ? AND started_at < ? GROUP BY 1, 2 ORDER BY 1, 2`,
    [from, bucket, from, to],
  );
  await db.raw(
    `SELECT t.key AS table, sum(t.value::bigint) FILTER (WHERE l.sync_type = 'pull') AS pulled, sum(t.value::bigint) FILTER (WHERE l.sync_type = 'push') AS pushed
       FROM sync_logs l, jsonb_each_text(l.records_by_table) t WHERE l.started_at >= ? AND l.started_at < ? GROUP BY 1 ORDER BY 1`,
    [from, to],
  );
  await db.raw(`SELECT entity, conflict_type, resolution_strategy, count(*) FROM sync_conflicts WHERE resolved_at >= ? AND resolved_at < ? GROUP BY 1, 2, 3`, [from, to]);
}

/** The median of RUNS timed runs, in ms. */
async function median(run: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    await run();
    times.push(elapsed(t));
  }
  return Number(times.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!.toFixed(1));
}

export async function benchStats(): Promise<void> {
  const url = databaseUrl();
  const schema = `bench_stats_${Date.now().toString(36)}`;
  let db: Knex;
  if (url) {
    const admin = openDatabase({ kind: 'postgres', url, poolMax: 1 });
    await admin.raw(`CREATE SCHEMA ${schema}`);
    await admin.destroy();
    db = openDatabase({ kind: 'postgres', url, poolMax: 2, searchPath: schema });
  } else {
    db = openDatabase({ kind: 'pglite', dataDir: 'memory://' });
  }
  try {
    await migrateToLatest(db);
    // A day of syncs ending at a whole minute: durations spread over 0–5 s (mostly short), a
    // tenth failed, two tables per sync.
    const until = 1_750_000_020_000;
    const since = until - DAY;
    const seeded = process.hrtime.bigint();
    for (let from = 0; from < ROWS; from += 100_000) {
      await db.raw(
        `INSERT INTO sync_logs (user_id, sync_type, started_at, completed_at, duration_ms, records_synced, records_by_table, conflicts, bytes_in, bytes_out, status)
         SELECT 'u' || (i % 5000)::text, CASE WHEN i % 3 = 0 THEN 'push' ELSE 'pull' END, ?::bigint + (i::bigint * ?::bigint) / ?::bigint, ?::bigint + (i::bigint * ?::bigint) / ?::bigint + 40,
                (((i::bigint * 7919) % 1000) * ((i::bigint * 104729) % 1000) / 200)::int, 3, jsonb_build_object('todos', 2, 'ideas', 1), 0, 1000, 5000, CASE WHEN i % 10 = 0 THEN 'failure' ELSE 'success' END
           FROM generate_series(?::int, ?::int) AS i`,
        [since, DAY, ROWS, since, DAY, ROWS, from, Math.min(ROWS, from + 100_000) - 1],
      );
    }
    const seedMs = elapsed(seeded);
    await db.raw('ANALYZE');
    const store = new KnexSyncLogStore(db);
    const after = {
      stats_ms: await median(async () => (await store.stats(since, until, 3))._unsafeUnwrap()),
      series_ms: await median(async () => (await store.series(since, until, 15 * 60_000))._unsafeUnwrap()),
    };
    const before = {
      stats_ms: await median(() => beforeStats(db, since, until)),
      series_ms: await median(() => beforeSeries(db, since, until, 15 * 60_000)),
    };
    const figures = Number((await db('sync_stats_minutes').count({ n: '*' }))[0]!['n']) + Number((await db('sync_stats_durations').count({ n: '*' }))[0]!['n']) + Number((await db('sync_stats_tables').count({ n: '*' }))[0]!['n']);

    // The writer's side: a batch of 500 entries spread over a minute, with the trigger and without.
    const batch = (n: number): SyncLogEntry[] =>
      Array.from({ length: 500 }, (_, i) => ({
        userId: `w${i % 50}`, syncType: i % 2 ? 'pull' : 'push', startedAt: until + n * 60_000 + i * 100, completedAt: until + n * 60_000 + i * 100 + 30, durationMs: (i * 37) % 900,
        recordsSynced: 3, recordsByTable: { todos: 2, ideas: 1 }, conflicts: i % 20 ? 0 : 1, conflictsByKind: i % 20 ? [] : [{ table: 'todos', type: 'update_update', resolution: 'per_column', count: 1 }],
        bytesIn: 100, bytesOut: 100, status: 'success', errorCode: null, errorMessage: null, deviceId: null, appVersion: null, schemaVersion: 1, requestId: null,
      }));
    // Interleaved, ten of each, the trigger switched between them: the host is noisy.
    let n = 0;
    const times: Record<'with' | 'without', number[]> = { with: [], without: [] };
    for (let i = 0; i < 20; i++) {
      const on = i % 2 === 0;
      await db.raw(`ALTER TABLE sync_logs ${on ? 'ENABLE' : 'DISABLE'} TRIGGER sync_logs_stats`);
      const t = process.hrtime.bigint();
      (await store.append(batch(n++)))._unsafeUnwrap();
      times[on ? 'with' : 'without'].push(elapsed(t));
    }
    await db.raw('ALTER TABLE sync_logs ENABLE TRIGGER sync_logs_stats');
    const mid = (xs: number[]) => Number(xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(1));
    const withTrigger = mid(times.with);
    const withoutTrigger = mid(times.without);

    report({
      name: 'stats',
      database: url ? 'postgres' : 'pglite',
      sync_logs_rows: ROWS,
      window: '24 h',
      series_bucket: '15 min',
      seed_ms: Math.round(seedMs),
      aggregate_rows: figures,
      before_stats_ms: before.stats_ms,
      after_stats_ms: after.stats_ms,
      before_series_ms: before.series_ms,
      after_series_ms: after.series_ms,
      append_500_with_aggregates_ms: withTrigger,
      append_500_without_aggregates_ms: withoutTrigger,
      runs: RUNS,
      append_runs: 10,
    });
  } finally {
    await db.destroy();
    if (url) {
      const admin = openDatabase({ kind: 'postgres', url, poolMax: 1 });
      await admin.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.destroy();
    }
  }
}
