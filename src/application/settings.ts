import type { SchemaVersionRange } from '../domain';

/** The limits and ranges the use cases enforce; read from the environment by the composition root. */
export interface SyncSettings {
  readonly maxPushRecords: number;
  readonly maxRecordBytes: number;
  /** Default and maximum number of rows in one pull response. */
  readonly pullLimit: number;
  /**
   * Most bytes in one pull page (the row that crosses it ends the page; a page always holds one
   * row). Bounds the memory a pull holds: a page read costs about 3.5× its bytes of heap.
   */
  readonly pullMaxBytes: number;
  /** Most bytes one user may store (storedRecordBytes of every row, tombstones included); 0: no quota. */
  readonly userQuotaBytes: number;
  /**
   * Pushes of one user that wait, without a database connection, while one of theirs is in
   * flight in this process; more get 429 RATE_LIMITED with Retry-After.
   */
  readonly pushQueuePerUser: number;
  readonly schemaVersions: SchemaVersionRange;
  /** How long a `push_id` is remembered (spec §4.2: 24 hours). */
  readonly pushReceiptTtlMs: number;
}

/** How long old data is kept (docs/operations.md, "Retention"); null keeps it forever. */
export interface RetentionSettings {
  readonly tombstonesMs: number | null;
  readonly syncLogsMs: number | null;
  readonly conflictsMs: number | null;
  /** The per-minute figures of the admin statistics (kept longer than the logs they sum). */
  readonly statsMs: number | null;
  /** Receipts older than SyncSettings.pushReceiptTtlMs are never honoured: they go after that. */
  readonly receiptsMs: number;
  /** Rows per batch: each batch is one short statement. */
  readonly batchSize: number;
}

export const DEFAULT_SYNC_SETTINGS: SyncSettings = {
  maxPushRecords: 1000,
  maxRecordBytes: 1024 * 1024,
  pullLimit: 10_000,
  pullMaxBytes: 4 * 1024 * 1024,
  userQuotaBytes: 1024 * 1024 * 1024,
  pushQueuePerUser: 4,
  schemaVersions: { min: 1, max: 1 },
  pushReceiptTtlMs: 24 * 60 * 60 * 1000,
};
