import type { Logger } from 'pino';
import { crossesAlertThreshold } from '../../domain';
import type { Alerts, Metrics, StreakChange, SyncLog, SyncLogEntry, SyncLogStore } from '../../application/ports';

export interface BatchingOptions {
  /** Entries held at most; past it new entries are dropped and counted. */
  readonly maxQueue: number;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
}

export const DEFAULT_BATCHING: BatchingOptions = { maxQueue: 10_000, batchSize: 500, flushIntervalMs: 1000 };

/**
 * The SyncLog off the request path: `record` appends to a bounded in-memory queue; one writer at a
 * time drains it in batches. A failed write is logged and counted and never reaches a sync; after
 * each write, a user whose failure streak reached the threshold raises one alert.
 */
export class BatchingSyncLog implements SyncLog {
  private queue: SyncLogEntry[] = [];
  private writing: Promise<void> | null = null;
  /** Alerts under way: not awaited by the writer (a slow webhook must not hold up the log). */
  private readonly alerting = new Set<Promise<void>>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly store: SyncLogStore,
    private readonly alerts: Alerts,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly options: BatchingOptions = DEFAULT_BATCHING,
  ) {}

  record(entry: SyncLogEntry): void {
    if (this.queue.length >= this.options.maxQueue) {
      this.metrics.syncLogDropped(1);
      return;
    }
    this.queue.push(entry);
    if (this.queue.length >= this.options.batchSize) void this.drain();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.drain();
      }, this.options.flushIntervalMs);
      this.timer.unref?.();
    }
  }

  /** Writes everything queued so far and waits for the alerts it raised (tests, shutdown). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.queue.length > 0 || this.writing) await this.drain();
    await Promise.all([...this.alerting]);
  }

  private drain(): Promise<void> {
    this.writing ??= this.writeAll()
      .catch((e: unknown) => {
        // A defect in a store must not become an unhandled rejection (which ends the process).
        this.metrics.syncLogWriteFailed();
        this.logger.error({ err: e }, 'sync log writer failed');
      })
      .finally(() => {
        this.writing = null;
      });
    return this.writing;
  }

  private alert(change: StreakChange): void {
    const sent = Promise.resolve()
      .then(() => this.alerts.userSyncFailing(change))
      .catch((e: unknown) => this.logger.error({ err: e, user_id: change.userId }, 'alert failed'))
      .finally(() => this.alerting.delete(sent));
    this.alerting.add(sent);
  }

  private async writeAll(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.batchSize);
      const written = await this.store.append(batch);
      if (written.isErr()) {
        this.metrics.syncLogWriteFailed();
        this.metrics.syncLogDropped(batch.length);
        this.logger.warn({ err: written.error.cause, entries: batch.length }, 'sync log write failed; entries dropped');
        continue;
      }
      const { streaks, rejected } = written.value;
      if (rejected.length > 0) {
        // Those entries alone are lost; the rest of the batch and every streak were written.
        this.metrics.syncLogWriteFailed();
        this.metrics.syncLogDropped(rejected.length);
        for (const r of rejected) this.logger.warn({ err: r.cause, request_id: r.requestId, user_id: r.userId }, 'sync log write failed for this entry; dropped (the rest of its batch was written)');
      }
      for (const change of streaks) {
        if (crossesAlertThreshold(change.streak)) this.alert(change);
      }
    }
  }
}
