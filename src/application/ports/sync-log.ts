import type { ResultAsync } from 'neverthrow';
import type { SyncError } from '../../domain';

export type SyncType = 'pull' | 'push';

/** One pull or push, as `sync_logs` keeps it. */
export interface SyncLogEntry {
  readonly userId: string;
  readonly syncType: SyncType;
  readonly startedAt: number;
  readonly completedAt: number;
  readonly durationMs: number;
  readonly recordsSynced: number;
  readonly recordsByTable: Readonly<Record<string, number>>;
  readonly conflicts: number;
  /** The conflicts resolved, counted by table, type and resolution (absent or empty: none). */
  readonly conflictsByKind?: ReadonlyArray<{ readonly table: string; readonly type: string; readonly resolution: string; readonly count: number }>;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly status: 'success' | 'failure';
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly deviceId: string | null;
  readonly appVersion: string | null;
  readonly schemaVersion: number | null;
  readonly requestId: string | null;
}

/**
 * Where syncs are recorded, off the request path. Contract: `record` returns at once and never
 * throws; entries are written in batches, in the order recorded; when the writer cannot keep up,
 * entries are dropped (and counted), never queued without bound; `flush` resolves once every entry
 * recorded before it was written or dropped.
 */
export interface SyncLog {
  record(entry: SyncLogEntry): void;
  flush(): Promise<void>;
}

/** A user's failure streak after an entry was written. */
export interface StreakChange {
  readonly userId: string;
  readonly streak: number;
  readonly errorCode: string | null;
  readonly at: number;
}

/** What `SyncLogStore.append` did with a batch. */
export interface AppendOutcome {
  /** The streak after each failure, users in user_id order (each user's entries in their order). */
  readonly streaks: StreakChange[];
  /** Entries the store could not write (the others were written); their streaks are counted all the same. */
  readonly rejected: ReadonlyArray<{ readonly requestId: string | null; readonly userId: string; readonly cause: unknown }>;
}

/**
 * The durable side of the sync log. `append` writes entries (in order) and updates each user's
 * streak of consecutive failures (a success resets it), atomically, returning the streak after
 * each failure. One entry the store refuses is set aside (`rejected`) and never costs the others
 * of its batch; an error means nothing of the batch was written.
 */
export interface SyncLogStore {
  append(entries: readonly SyncLogEntry[]): ResultAsync<AppendOutcome, SyncError>;
}

export interface TypeStats {
  readonly count: number;
  readonly success_rate: number | null;
  readonly avg_duration_ms: number | null;
  readonly p95_duration_ms: number | null;
  readonly records: number;
  readonly bytes_in: number;
  readonly bytes_out: number;
}

export interface SyncStats {
  readonly since: number;
  readonly until: number;
  readonly pull: TypeStats;
  readonly push: TypeStats;
  readonly conflicts: ReadonlyArray<{ table: string; type: string; count: number }>;
  /** Users whose current streak of consecutive failures is over 3. */
  readonly failing_users: ReadonlyArray<{ user_id: string; streak: number; last_error_code: string | null; last_error_message: string | null; since: number }>;
}

/** One sync type's figures in one bucket of a series (durations null when the bucket has no sync). */
export interface SeriesTypeFigures {
  readonly count: number;
  readonly failures: number;
  readonly p50_duration_ms: number | null;
  readonly p95_duration_ms: number | null;
  readonly records: number;
}

/** What the database answers for a series: only the buckets that hold syncs, by index from `from`. */
export interface SeriesRows {
  readonly buckets: ReadonlyArray<{ readonly index: number; readonly type: SyncType } & SeriesTypeFigures>;
  readonly records_by_table: ReadonlyArray<{ table: string; pulled: number; pushed: number }>;
  readonly conflicts: ReadonlyArray<{ table: string; type: string; resolution: string; count: number }>;
}

/** `GET /api/admin/sync/series`: every bucket of `[from, to)`, empty ones included. */
export interface SyncSeries {
  readonly from: number;
  readonly to: number;
  readonly bucket_ms: number;
  readonly buckets: ReadonlyArray<{ start: number; pull: SeriesTypeFigures; push: SeriesTypeFigures }>;
  readonly records_by_table: SeriesRows['records_by_table'];
  readonly conflicts: SeriesRows['conflicts'];
}

/** Reads aggregate figures (computed in SQL); the only cross-user queries, for operators. */
export interface SyncStatsQuery {
  stats(sinceMs: number, untilMs: number, failingOver: number): ResultAsync<SyncStats, SyncError>;
  /** Syncs of `[fromMs, toMs)` grouped in buckets of `bucketMs` counted from `fromMs` (bucket i starts at fromMs + i * bucketMs). */
  series(fromMs: number, toMs: number, bucketMs: number): ResultAsync<SeriesRows, SyncError>;
}

/** This process's database pool, as the driver's pool reports it (null when the driver has none). */
export interface PoolFigures {
  readonly used: number;
  readonly free: number;
  readonly pending: number;
  readonly max: number;
}

/** What `GET /api/admin/runtime` answers: this process's live figures. */
export interface RuntimeFigures {
  readonly pool: PoolFigures | null;
}

/** Live figures of the running process, for the dashboard. */
export interface RuntimeProbe {
  pool(): PoolFigures | null;
}

/** Tells operators that a user's sync keeps failing. Contract: never throws. */
export interface Alerts {
  userSyncFailing(alert: StreakChange): Promise<void>;
}
