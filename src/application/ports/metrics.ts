import type { SyncLogEntry } from './sync-log';

/** Counters and histograms for `/metrics`. Contract: every method is cheap and never throws. */
export interface Metrics {
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  observeSync(entry: SyncLogEntry, conflicts: ReadonlyArray<{ table: string; type: string }>): void;
  syncLogDropped(count: number): void;
  syncLogWriteFailed(): void;
  /** The Prometheus text exposition of every metric. */
  render(): Promise<{ contentType: string; body: string }>;
}
