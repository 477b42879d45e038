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
 * The users of the batch's oldest records, oldest first. The inner query reads the age index up
 * to the batch size, so a batch costs the same however many old records wait.
 */
const usersOfOldest = (oldest: string) => `SELECT user_id FROM (${oldest}) AS o GROUP BY user_id ORDER BY min(age), user_id`;

/** Per-user records: purged one user at a time, like tombstones (below). */
const PER_USER_KEY: Partial<Record<AgedRecords, string>> = { sync_conflicts: 'id', sync_push_receipts: 'push_id' };

/**
 * Purges on PostgreSQL (or PGlite). Tombstones, conflicts and receipts are purged per user: the
 * users of the batch's oldest records first, then, for each, statements that all
 * name that one user, so that on a database distributed by `user_id` (Citus, docs/scaling.md)
 * each is routed to the user's node (Citus refuses a statement over several users that locks
 * rows, or deletes by a LIMITed subquery). A user's tombstones are purged in one transaction that
 * takes the user's sync_users row lock first, as a push does (so the two cannot deadlock), skips
 * a user whose lock a push holds (their tombstones wait for the next batch), deletes only rows
 * still deleted, and moves the user's purged_through.
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
    const users = usersOfOldest(`SELECT user_id, last_modified_at AS age FROM ${t} WHERE _status = 'deleted' AND last_modified_at < ? ORDER BY last_modified_at LIMIT ?`);
    return this.perUser(users, [beforeMs, limit], limit, (user, left) =>
      this.db.transaction(async (trx) => {
        const locked = await trx.raw('SELECT user_id FROM sync_users WHERE user_id = ? FOR UPDATE SKIP LOCKED', [user]);
        if (locked.rows.length === 0) return 0;
        const { rows } = await trx.raw(
          `DELETE FROM ${t} WHERE user_id = ? AND _status = 'deleted' AND id IN (SELECT id FROM ${t} WHERE user_id = ? AND _status = 'deleted' AND last_modified_at < ? ORDER BY last_modified_at LIMIT ?) RETURNING last_modified_at`,
          [user, user, beforeMs, left],
        );
        if (rows.length === 0) return 0;
        const stamp = Math.max(...rows.map((r: { last_modified_at: string | number }) => Number(r.last_modified_at)));
        await trx.raw('UPDATE sync_users SET purged_through = GREATEST(purged_through, ?) WHERE user_id = ?', [stamp, user]);
        return rows.length as number;
      }),
    );
  }

  purgeAged(what: AgedRecords, beforeMs: number, limit: number): ResultAsync<number, SyncError> {
    const t = quote(what);
    const age = quote(AGE_COLUMN[what]);
    const key = PER_USER_KEY[what];
    if (key) {
      const users = usersOfOldest(`SELECT user_id, ${age} AS age FROM ${t} WHERE ${age} < ? ORDER BY ${age} LIMIT ?`);
      return this.perUser(users, [beforeMs, limit], limit, async (user, left) => {
        const sql = `DELETE FROM ${t} WHERE user_id = ? AND ${quote(key)} IN (SELECT ${quote(key)} FROM ${t} WHERE user_id = ? AND ${age} < ? LIMIT ?) RETURNING 1`;
        return ((await this.db.raw(sql, [user, user, beforeMs, left])) as { rows: unknown[] }).rows.length;
      });
    }
    // sync_logs and the per-minute figures are not per user (and stay on one node on Citus).
    const sql = `WITH gone AS (DELETE FROM ${t} WHERE ctid IN (SELECT ctid FROM ${t} WHERE ${age} < ? LIMIT ?) RETURNING 1) SELECT count(*)::int AS n FROM gone`;
    return this.count(sql, [beforeMs, limit]);
  }

  /** Up to `limit` records of the users `usersSql` lists, purged user by user in that order. */
  private perUser(usersSql: string, bindings: unknown[], limit: number, purge: (userId: string, left: number) => Promise<number>): ResultAsync<number, SyncError> {
    const run = async () => {
      const { rows } = (await this.db.raw(usersSql, bindings as Knex.ValueDict[])) as { rows: Array<{ user_id: string }> };
      let done = 0;
      for (const { user_id } of rows) {
        if (done >= limit) break;
        done += await purge(user_id, limit - done);
      }
      return done;
    };
    return ResultAsync.fromPromise(run(), databaseError);
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
