import type { Knex } from 'knex';
import { ResultAsync } from 'neverthrow';
import type { SyncError } from '../../domain';
import type { AppendOutcome, SeriesRows, StreakChange, SyncLogEntry, SyncLogStore, SyncStats, SyncStatsQuery, SyncType, TypeStats } from '../../application/ports';
import { databaseError } from './errors';

const fromDb = <T>(p: Promise<T>): ResultAsync<T, SyncError> => ResultAsync.fromPromise(p, databaseError);
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * The duration histogram's buckets summed per group (`index`, and the sync type) over the minutes
 * of a window, with each bucket's running total: the percentile p is the first bucket whose
 * running total reaches ceil(p × total) (the nearest rank). Bindings: the index expression's,
 * then the window.
 */
const HISTOGRAM_RANKS = (index: string): string => `WITH summed AS (
    SELECT ${index} AS index, sync_type, bucket, sum(count) AS n FROM sync_stats_durations WHERE minute_start >= ? AND minute_start < ? GROUP BY 1, 2, 3
  ), ranked AS (
    SELECT index, sync_type, bucket, sum(n) OVER (PARTITION BY index, sync_type ORDER BY bucket) AS cum, sum(n) OVER (PARTITION BY index, sync_type) AS total FROM summed
  )`;

/** Bucket width ratio of the duration histogram (migration 011's sync_duration_bucket). */
const RATIO = 1.1;
/**
 * A duration for a histogram bucket: the millisecond itself under 20 ms (exact), else the
 * geometric middle of [20·1.1^k, 20·1.1^(k+1)), within 5 % of any duration in that bucket.
 */
export function durationOfBucket(bucket: number): number {
  if (bucket < 20) return bucket;
  return Math.round(20 * RATIO ** (bucket - 20) * Math.sqrt(RATIO) * 100) / 100;
}

/** sync_logs and sync_failure_streaks (migration 002); the admin figures from the aggregates of migration 011. */
export class KnexSyncLogStore implements SyncLogStore, SyncStatsQuery {
  constructor(private readonly db: Knex) {}

  append(entries: readonly SyncLogEntry[]): ResultAsync<AppendOutcome, SyncError> {
    const row = (e: SyncLogEntry) => ({
      user_id: e.userId,
      sync_type: e.syncType,
      started_at: e.startedAt,
      completed_at: e.completedAt,
      duration_ms: Math.round(e.durationMs),
      records_synced: e.recordsSynced,
      records_by_table: JSON.stringify(e.recordsByTable),
      conflicts: e.conflicts,
      // The statement's trigger adds these to sync_stats_conflicts (migration 011).
      conflicts_by_kind: e.conflictsByKind?.length ? JSON.stringify(e.conflictsByKind.map((c) => ({ entity: c.table, conflict_type: c.type, resolution_strategy: c.resolution, count: c.count }))) : null,
      bytes_in: e.bytesIn,
      bytes_out: e.bytesOut,
      status: e.status,
      error_code: e.errorCode,
      error_message: e.errorMessage,
      device_id: e.deviceId,
      app_version: e.appVersion,
      schema_version: e.schemaVersion,
      request_id: e.requestId,
    });
    return fromDb(
      this.db.transaction(async (trx) => {
        const rejected: Array<AppendOutcome['rejected'][number]> = [];
        // The batch in one statement, inside a savepoint; if PostgreSQL refuses it (one value it
        // cannot store, say), each row again in a savepoint of its own, so only the bad ones are lost.
        try {
          await trx.transaction((sp) => sp('sync_logs').insert(entries.map(row)));
        } catch {
          for (const e of entries) {
            try {
              await trx.transaction((sp) => sp('sync_logs').insert(row(e)));
            } catch (cause) {
              rejected.push({ requestId: e.requestId, userId: e.userId, cause });
            }
          }
        }
        const changes: StreakChange[] = [];
        // Users in user_id order (each user's entries in their own order, which a streak follows):
        // two processes flushing at once then take the streak rows' locks in the same order instead
        // of deadlocking, which dropped whole batches of logs when several processes shared a database.
        const ordered = [...entries.entries()].sort(([i, a], [j, b]) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : i - j)).map(([, e]) => e);
        for (const e of ordered) {
          const failed = e.status === 'failure';
          const { rows } = await trx.raw(
            `INSERT INTO sync_failure_streaks AS s (user_id, streak, updated_at, last_error_code) VALUES (?, ?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET streak = CASE WHEN ? THEN s.streak + 1 ELSE 0 END, updated_at = EXCLUDED.updated_at, last_error_code = EXCLUDED.last_error_code
             RETURNING streak`,
            [e.userId, failed ? 1 : 0, e.completedAt, e.errorCode, failed],
          );
          if (failed) changes.push({ userId: e.userId, streak: num(rows[0]?.streak), errorCode: e.errorCode, at: e.completedAt });
        }
        return { streaks: changes, rejected };
      }),
    );
  }

  stats(sinceMs: number, untilMs: number, failingOver: number): ResultAsync<SyncStats, SyncError> {
    const read = async (): Promise<SyncStats> => {
      // The per-minute aggregates (migration 011), never the log rows: the window is whole minutes.
      const window = [sinceMs, untilMs];
      const perType = await this.db.raw(
        `SELECT sync_type, sum(count) AS count, sum(failures) AS failures, sum(sum_duration_ms) AS duration,
                sum(records) AS records, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out
           FROM sync_stats_minutes WHERE minute_start >= ? AND minute_start < ? GROUP BY sync_type`,
        window,
      );
      const p95 = await this.db.raw(
        `${HISTOGRAM_RANKS('0')}
         SELECT sync_type, min(bucket) FILTER (WHERE cum >= ceil(0.95 * total)) AS p95 FROM ranked GROUP BY sync_type`,
        window,
      );
      const typeStats = (type: string): TypeStats => {
        const r = perType.rows.find((row: { sync_type: string }) => row.sync_type === type);
        const count = num(r?.count);
        const h = p95.rows.find((row: { sync_type: string }) => row.sync_type === type);
        return {
          count,
          success_rate: count ? (count - num(r?.failures)) / count : null,
          avg_duration_ms: count ? num(r?.duration) / count : null,
          p95_duration_ms: count ? durationOfBucket(num(h?.p95)) : null,
          records: num(r?.records),
          bytes_in: num(r?.bytes_in),
          bytes_out: num(r?.bytes_out),
        };
      };
      const conflicts = await this.db('sync_stats_conflicts')
        .select('entity as table', 'conflict_type as type')
        .sum({ count: 'count' })
        .where('minute_start', '>=', sinceMs)
        .andWhere('minute_start', '<', untilMs)
        .groupBy('entity', 'conflict_type')
        .orderBy(['entity', 'conflict_type']);
      // The message of each user's latest failure (sync_logs' (user_id, started_at) index finds it).
      const { rows: failing } = await this.db.raw(
        `SELECT s.user_id, s.streak, s.updated_at, s.last_error_code, l.error_message AS last_error_message
           FROM sync_failure_streaks s
           LEFT JOIN LATERAL (SELECT error_message FROM sync_logs l WHERE l.user_id = s.user_id AND l.status = 'failure' ORDER BY l.started_at DESC, l.id DESC LIMIT 1) l ON true
          WHERE s.streak > ? ORDER BY s.streak DESC, s.user_id LIMIT 1000`,
        [failingOver],
      );
      return {
        since: sinceMs,
        until: untilMs,
        pull: typeStats('pull'),
        push: typeStats('push'),
        conflicts: conflicts.map((c: Record<string, unknown>) => ({ table: String(c['table']), type: String(c['type']), count: num(c['count']) })),
        failing_users: failing.map((f: Record<string, unknown>) => ({ user_id: String(f['user_id']), streak: num(f['streak']), last_error_code: (f['last_error_code'] as string | null) ?? null, last_error_message: (f['last_error_message'] as string | null) ?? null, since: num(f['updated_at']) })),
      };
    };
    return fromDb(read());
  }

  series(fromMs: number, toMs: number, bucketMs: number): ResultAsync<SeriesRows, SyncError> {
    const read = async (): Promise<SeriesRows> => {
      // The bucket's index is the integer division of the minute's offset from `from` (what
      // date_bin does for a timestamp), exact on epoch milliseconds and the same on PGlite.
      const buckets = await this.db.raw(
        `SELECT (minute_start - ?::bigint) / ?::bigint AS index, sync_type, sum(count) AS count, sum(failures) AS failures, sum(records) AS records
           FROM sync_stats_minutes WHERE minute_start >= ? AND minute_start < ? GROUP BY 1, 2 ORDER BY 1, 2`,
        [fromMs, bucketMs, fromMs, toMs],
      );
      const percentiles = await this.db.raw(
        `${HISTOGRAM_RANKS('(minute_start - ?::bigint) / ?::bigint')}
         SELECT index, sync_type, min(bucket) FILTER (WHERE cum >= ceil(0.5 * total)) AS p50, min(bucket) FILTER (WHERE cum >= ceil(0.95 * total)) AS p95
           FROM ranked GROUP BY 1, 2`,
        [fromMs, bucketMs, fromMs, toMs],
      );
      const tables = await this.db.raw(
        `SELECT table_name AS table, sum(records) FILTER (WHERE sync_type = 'pull') AS pulled, sum(records) FILTER (WHERE sync_type = 'push') AS pushed
           FROM sync_stats_tables WHERE minute_start >= ? AND minute_start < ? GROUP BY 1 ORDER BY 1`,
        [fromMs, toMs],
      );
      const conflicts = await this.db.raw(
        `SELECT entity, conflict_type, resolution_strategy, sum(count) AS count FROM sync_stats_conflicts
          WHERE minute_start >= ? AND minute_start < ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
        [fromMs, toMs],
      );
      const ranks = new Map<string, { p50: unknown; p95: unknown }>(percentiles.rows.map((r: Record<string, unknown>) => [`${String(r['index'])}/${String(r['sync_type'])}`, { p50: r['p50'], p95: r['p95'] }]));
      return {
        buckets: buckets.rows.map((r: Record<string, unknown>) => {
          const count = num(r['count']);
          const rank = ranks.get(`${String(r['index'])}/${String(r['sync_type'])}`);
          return {
            index: num(r['index']),
            type: r['sync_type'] as SyncType,
            count,
            failures: num(r['failures']),
            p50_duration_ms: count && rank ? durationOfBucket(num(rank.p50)) : null,
            p95_duration_ms: count && rank ? durationOfBucket(num(rank.p95)) : null,
            records: num(r['records']),
          };
        }),
        records_by_table: tables.rows.map((r: Record<string, unknown>) => ({ table: String(r['table']), pulled: num(r['pulled']), pushed: num(r['pushed']) })),
        conflicts: conflicts.rows.map((r: Record<string, unknown>) => ({ table: String(r['entity']), type: String(r['conflict_type']), resolution: String(r['resolution_strategy']), count: num(r['count']) })),
      };
    };
    return fromDb(read());
  }
}
