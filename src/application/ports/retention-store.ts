import type { ResultAsync } from 'neverthrow';
import type { SyncError, TableSpec } from '../../domain';

/** What ages out besides tombstones: sync logs, recorded conflicts, push receipts and the per-minute figures. */
export type AgedRecords = 'sync_logs' | 'sync_conflicts' | 'sync_push_receipts' | StatsRecords;
export type StatsRecords = 'sync_stats_minutes' | 'sync_stats_durations' | 'sync_stats_tables' | 'sync_stats_conflicts';

/**
 * Where old data is purged, in small batches. Contract (test/contract/retention-store.contract.ts):
 * a tombstone batch deletes only deleted rows stamped before the bound, skips users whose lock is
 * held (a push in flight) rather than waiting on them, and moves each user's purge horizon
 * (`PullPage.purgedThrough`) to the newest stamp it purged; `exclusively` runs its work in one
 * process at a time.
 */
export interface RetentionStore {
  /** Runs `work` unless another process is purging (then resolves false without running it). */
  exclusively(work: () => Promise<void>): ResultAsync<boolean, SyncError>;
  /** Deletes up to `limit` tombstones of `table` stamped before `beforeMs`; returns how many. */
  purgeTombstones(table: TableSpec, beforeMs: number, limit: number): ResultAsync<number, SyncError>;
  /** Deletes up to `limit` records of `what` older than `beforeMs`; returns how many. */
  purgeAged(what: AgedRecords, beforeMs: number, limit: number): ResultAsync<number, SyncError>;
}
