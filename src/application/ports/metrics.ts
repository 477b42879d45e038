import type { SyncLogEntry } from './sync-log';

/** Counters and histograms for `/metrics`. Contract: every method is cheap and never throws. */
export interface Metrics {
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  observeSync(entry: SyncLogEntry, conflicts: ReadonlyArray<{ table: string; type: string }>): void;
  syncLogDropped(count: number): void;
  syncLogWriteFailed(): void;
  /** Live channels open in this process now. */
  liveConnections(open: number): void;
  /** Events written to live channels (pokes, check-now pokes). */
  livePokesSent(count: number): void;
  /** Live channels the server closed on a client: `slow_client` (never read), or refused at open (`per_user`, `per_process`). */
  liveDropped(reason: string): void;
  /** The Prometheus text exposition of every metric. */
  render(): Promise<{ contentType: string; body: string }>;
}
