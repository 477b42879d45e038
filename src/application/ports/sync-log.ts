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
  readonly failing_users: ReadonlyArray<{ user_id: string; streak: number; last_error_code: string | null; since: number }>;
}

/** Reads aggregate figures (computed in SQL); the only cross-user query, for operators. */
export interface SyncStatsQuery {
  stats(sinceMs: number, untilMs: number, failingOver: number): ResultAsync<SyncStats, SyncError>;
}

/** Tells operators that a user's sync keeps failing. Contract: never throws. */
export interface Alerts {
  userSyncFailing(alert: StreakChange): Promise<void>;
}
