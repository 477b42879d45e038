import type { Knex } from 'knex';
import { ResultAsync } from 'neverthrow';
import type { SyncError, TableSpec } from '../../domain';
import type { AgedRecords, RetentionStore } from '../../application/ports';
import { usesPgDriver } from './connection';
import { databaseError } from './errors';

/** Any 64-bit number of this project's own: the advisory lock only one retention run holds. */
const RETENTION_LOCK = 7_406_151_133_000_001n;

const quote = (name: string) => `"${name}"`;

/** The column that says how old a record of each kind is. */
const AGE_COLUMN: Record<AgedRecords, string> = {
  sync_logs: 'started_at',
  sync_conflicts: 'resolved_at',
  sync_push_receipts: 'created_at',
  sync_stats_minutes: 'minute_start',
  sync_stats_durations: 'minute_start',
  sync_stats_tables: 'minute_start',
  sync_stats_conflicts: 'minute_start',
};

/**
 * Purges on PostgreSQL (or PGlite). A tombstone batch takes the affected users' sync_users row
 * locks first, as a push does (so the two cannot deadlock), skipping users whose lock a push holds
 * (their tombstones wait for the next batch), deletes only rows still deleted when it gets to
 * them, and moves each user's purged_through, all in one statement.
 */
export class KnexRetentionStore implements RetentionStore {
  /** PGlite runs in this process only: an in-process guard stands for the advisory lock. */
  private running = false;

  constructor(private readonly db: Knex) {}

  exclusively(work: () => Promise<void>): ResultAsync<boolean, SyncError> {
    return ResultAsync.fromPromise(usesPgDriver(this.db) ? this.withAdvisoryLock(work) : this.inProcess(work), databaseError);
  }

  private async inProcess(work: () => Promise<void>): Promise<boolean> {
    if (this.running) return false;
    this.running = true;
    try {
      await work();
      return true;
    } finally {
      this.running = false;
    }
  }

  /** A session lock, held on a connection of its own for the whole run; the batches use the pool. */
  private async withAdvisoryLock(work: () => Promise<void>): Promise<boolean> {
    const client = this.db.client as unknown as { acquireConnection(): Promise<PgLock>; releaseConnection(c: PgLock): Promise<unknown> };
    const conn = await client.acquireConnection();
    try {
      const got = await conn.query({ text: 'SELECT pg_try_advisory_lock($1::int8) AS ok', values: [RETENTION_LOCK.toString()] });
      if (!got.rows[0]?.ok) return false;
      try {
        await work();
        return true;
      } finally {
        await conn.query({ text: 'SELECT pg_advisory_unlock($1::int8)', values: [RETENTION_LOCK.toString()] }).catch((e: unknown) => (conn.__knex__disposed ??= e));
      }
    } finally {
      await client.releaseConnection(conn);
    }
  }

  purgeTombstones(table: TableSpec, beforeMs: number, limit: number): ResultAsync<number, SyncError> {
    const t = quote(table.name);
    const sql =
      `WITH candidates AS MATERIALIZED (SELECT user_id, id FROM ${t} WHERE _status = 'deleted' AND last_modified_at < ? ORDER BY last_modified_at LIMIT ?), ` +
      `users AS MATERIALIZED (SELECT user_id FROM sync_users WHERE user_id IN (SELECT DISTINCT user_id FROM candidates) ORDER BY user_id FOR UPDATE SKIP LOCKED), ` +
      `gone AS (DELETE FROM ${t} AS r USING candidates AS c WHERE r.user_id = c.user_id AND r.id = c.id AND r._status = 'deleted' AND r.user_id IN (SELECT user_id FROM users) RETURNING r.user_id, r.last_modified_at), ` +
      `horizon AS (UPDATE sync_users AS u SET purged_through = GREATEST(u.purged_through, g.stamp) FROM (SELECT user_id, max(last_modified_at) AS stamp FROM gone GROUP BY user_id) AS g WHERE u.user_id = g.user_id) ` +
      `SELECT count(*)::int AS n FROM gone`;
    return this.count(sql, [beforeMs, limit]);
  }

  purgeAged(what: AgedRecords, beforeMs: number, limit: number): ResultAsync<number, SyncError> {
    const t = quote(what);
    const sql = `WITH gone AS (DELETE FROM ${t} WHERE ctid IN (SELECT ctid FROM ${t} WHERE ${quote(AGE_COLUMN[what])} < ? LIMIT ?) RETURNING 1) SELECT count(*)::int AS n FROM gone`;
    return this.count(sql, [beforeMs, limit]);
  }

  private count(sql: string, bindings: unknown[]): ResultAsync<number, SyncError> {
    return ResultAsync.fromPromise(
      (this.db.raw(sql, bindings as Knex.ValueDict[]) as Promise<{ rows: Array<{ n: number }> }>).then((r) => Number(r.rows[0]?.n ?? 0)),
      databaseError,
    );
  }
}

interface PgLock {
  query(config: { text: string; values: unknown[] }): Promise<{ rows: Array<Record<string, unknown>> }>;
  __knex__disposed?: unknown;
}
