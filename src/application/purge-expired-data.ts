import { errAsync, okAsync, type ResultAsync } from 'neverthrow';
import { TABLES, type SyncError } from '../domain';
import type { AgedRecords, Clock, RetentionStore, StatsRecords } from './ports';
import type { RetentionSettings } from './settings';

const STATS_RECORDS: readonly StatsRecords[] = ['sync_stats_minutes', 'sync_stats_durations', 'sync_stats_tables', 'sync_stats_conflicts'];

export interface PurgeReport {
  /** False when another process was purging, so this run did nothing. */
  readonly ran: boolean;
  readonly tombstones: number;
  readonly sync_logs: number;
  readonly sync_conflicts: number;
  readonly sync_push_receipts: number;
  /** Rows of the per-minute figures (sync_stats_*), all four tables together. */
  readonly sync_stats: number;
}

/**
 * The retention job: purges tombstones, sync logs, conflicts, push receipts and the per-minute
 * figures of the admin statistics older than their
 * retention, in batches of `batchSize` (one short statement each, so no user's lock is held for
 * long), in one process at a time. A device whose cursor predates a purged tombstone is told to
 * sync from the start (CURSOR_EXPIRED), so a purged delete is never silently missed.
 */
export class PurgeExpiredData {
  constructor(
    private readonly store: RetentionStore,
    private readonly clock: Clock,
    private readonly settings: RetentionSettings,
  ) {}

  /** `stop()` is asked between batches: true ends the run early (the server is shutting down). */
  execute(stop: () => boolean = () => false): ResultAsync<PurgeReport, SyncError> {
    const counts = { tombstones: 0, sync_logs: 0, sync_conflicts: 0, sync_push_receipts: 0, sync_stats: 0 };
    const now = this.clock.now();
    const limit = this.settings.batchSize;
    const drain = async (batch: () => ResultAsync<number, SyncError>): Promise<number> => {
      let total = 0;
      while (!stop()) {
        const n = await batch();
        if (n.isErr()) throw n.error;
        total += n.value;
        if (n.value < limit) return total;
      }
      return total;
    };
    let failure: SyncError | null = null;
    const work = async () => {
      try {
        await purgeAll();
      } catch (e) {
        failure = e as SyncError; // drain throws only the store's SyncErrors
      }
    };
    const purgeAll = async () => {
      const tombstones = this.settings.tombstonesMs;
      if (tombstones !== null) for (const table of TABLES) counts.tombstones += await drain(() => this.store.purgeTombstones(table, now - tombstones, limit));
      const aged: Array<[Exclude<AgedRecords, StatsRecords>, number | null]> = [
        ['sync_logs', this.settings.syncLogsMs],
        ['sync_conflicts', this.settings.conflictsMs],
        ['sync_push_receipts', this.settings.receiptsMs],
      ];
      for (const [what, keepMs] of aged) if (keepMs !== null) counts[what] += await drain(() => this.store.purgeAged(what, now - keepMs, limit));
      // The figures outlive the logs they sum (docs/operations.md, "Retention").
      const stats = this.settings.statsMs;
      if (stats !== null) for (const what of STATS_RECORDS) counts.sync_stats += await drain(() => this.store.purgeAged(what, now - stats, limit));
    };
    return this.store.exclusively(work).andThen((ran) => (failure ? errAsync(failure) : okAsync({ ran, ...counts })));
  }
}
