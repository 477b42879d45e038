import type { SyncResultKind } from '../../../src/domain';

/** What one sync did, as the client measured it. */
export interface SyncMetrics {
  readonly startedAt: number;
  readonly durationMs: number;
  readonly recordsPulled: number;
  readonly recordsPushed: number;
  /** Bytes on the wire, when the transport reports them (the HTTP transport does). */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly conflicts: number;
  readonly result: 'ok' | SyncResultKind;
  /** Failed attempts in a row before this one (0 for a first try). */
  readonly retries: number;
}

/**
 * Where the app sends sync measurements (its analytics, a log). Contract: `record` returns at
 * once and never throws; the client ignores a sink that does.
 */
export interface MetricsSink {
  record(metrics: SyncMetrics): void;
}
