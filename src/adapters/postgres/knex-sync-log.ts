import type { Knex } from 'knex';
import { ResultAsync } from 'neverthrow';
import type { SyncError } from '../../domain';
import type { AppendOutcome, SeriesRows, StreakChange, SyncLogEntry, SyncLogStore, SyncStats, SyncStatsQuery, SyncType, TypeStats } from '../../application/ports';
import { databaseError } from './errors';

const fromDb = <T>(p: Promise<T>): ResultAsync<T, SyncError> => ResultAsync.fromPromise(p, databaseError);
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** sync_logs and sync_failure_streaks (migration 002). */
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
      const perType = await this.db.raw(
        `SELECT sync_type, count(*) AS count,
                avg(CASE WHEN status = 'success' THEN 1.0 ELSE 0.0 END) AS success_rate,
                avg(duration_ms) AS avg_duration_ms,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_duration_ms,
                sum(records_synced) AS records, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out
           FROM sync_logs WHERE started_at >= ? AND started_at < ? GROUP BY sync_type`,
        [sinceMs, untilMs],
      );
      const typeStats = (type: string): TypeStats => {
        const r = perType.rows.find((row: { sync_type: string }) => row.sync_type === type);
        return {
          count: num(r?.count),
          success_rate: numOrNull(r?.success_rate),
          avg_duration_ms: numOrNull(r?.avg_duration_ms),
          p95_duration_ms: numOrNull(r?.p95_duration_ms),
          records: num(r?.records),
          bytes_in: num(r?.bytes_in),
          bytes_out: num(r?.bytes_out),
        };
      };
      const conflicts = await this.db('sync_conflicts')
        .select('entity as table', 'conflict_type as type')
        .count({ count: '*' })
        .where('resolved_at', '>=', sinceMs)
        .andWhere('resolved_at', '<', untilMs)
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
      // date_bin on epoch milliseconds: integer division of the offset from `from` is the bucket's
      // index, exact (no float seconds, no time zone) and the same on PostgreSQL and PGlite.
      const buckets = await this.db.raw(
        `SELECT (started_at - ?::bigint) / ?::bigint AS index, sync_type, count(*) AS count,
                count(*) FILTER (WHERE status = 'failure') AS failures,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
                sum(records_synced) AS records
           FROM sync_logs WHERE started_at >= ? AND started_at < ? GROUP BY 1, 2 ORDER BY 1, 2`,
        [fromMs, bucketMs, fromMs, toMs],
      );
      const tables = await this.db.raw(
        `SELECT t.key AS table, sum(t.value::bigint) FILTER (WHERE l.sync_type = 'pull') AS pulled, sum(t.value::bigint) FILTER (WHERE l.sync_type = 'push') AS pushed
           FROM sync_logs l, jsonb_each_text(l.records_by_table) t
          WHERE l.started_at >= ? AND l.started_at < ? GROUP BY 1 ORDER BY 1`,
        [fromMs, toMs],
      );
      const conflicts = await this.db.raw(
        `SELECT entity, conflict_type, resolution_strategy, count(*) AS count FROM sync_conflicts
          WHERE resolved_at >= ? AND resolved_at < ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
        [fromMs, toMs],
      );
      return {
        buckets: buckets.rows.map((r: Record<string, unknown>) => ({
          index: num(r['index']),
          type: r['sync_type'] as SyncType,
          count: num(r['count']),
          failures: num(r['failures']),
          p50_duration_ms: numOrNull(r['p50']),
          p95_duration_ms: numOrNull(r['p95']),
          records: num(r['records']),
        })),
        records_by_table: tables.rows.map((r: Record<string, unknown>) => ({ table: String(r['table']), pulled: num(r['pulled']), pushed: num(r['pushed']) })),
        conflicts: conflicts.rows.map((r: Record<string, unknown>) => ({ table: String(r['entity']), type: String(r['conflict_type']), resolution: String(r['resolution_strategy']), count: num(r['count']) })),
      };
    };
    return fromDb(read());
  }
}
