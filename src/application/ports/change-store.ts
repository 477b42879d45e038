import type { ResultAsync } from 'neverthrow';
import type { Conflict, PulledRow, SyncError, TableSpec, WireRecord } from '../../domain';

/** A page of a user's row versions, read from one consistent snapshot. */
export interface PullPage {
  /** At most `limit` rows, in `last_modified_at` order. */
  readonly rows: readonly PulledRow[];
  readonly hasMore: boolean;
  /** The user's newest committed stamp in the snapshot (0 for a user who never wrote). */
  readonly highWater: number;
  /** The newest stamp among the user's purged tombstones in the same snapshot (0 when none): a cursor below it may have missed a delete. */
  readonly purgedThrough: number;
  /**
   * Active rows of `rows` whose stored values cannot be decrypted (still in `rows`, for the
   * cursor; their sensitive values are as stored). Absent or empty when there are none.
   */
  readonly undecryptable?: ReadonlyArray<{ readonly table: string; readonly id: string }>;
}

/** A receipt a push transaction will look up (see ChangeStore.inPushTransaction). */
export interface ReceiptLookup {
  readonly pushId: string;
  readonly notBeforeMs: number;
}

export interface PullQuery {
  readonly since: number | null;
  readonly tables: readonly TableSpec[];
  /** Tables read from the beginning (tombstones left out), whatever `since` is. */
  readonly fullTables: ReadonlySet<string>;
  readonly limit: number;
  /**
   * A page stops at the row that brings it to this many bytes (as the store counts a row, about
   * its stored size); a page always holds at least one row. Absent: no byte cap.
   */
  readonly maxBytes?: number;
  /** Leave out row versions this device wrote itself (echo suppression); null sends everything. */
  readonly excludeDevice: string | null;
}

export interface StoredRow {
  readonly values: WireRecord;
  readonly deleted: boolean;
  readonly lastModifiedAt: number;
  /** The device whose push wrote this version, or null (another device's merge, or any other writer). */
  readonly lastModifiedBy: string | null;
  /** Its stored values cannot be decrypted: the sensitive ones in `values` are as stored (ciphertext or whatever is there). */
  readonly undecryptable?: boolean;
}

export interface RowWrite {
  readonly id: string;
  /** Every column of the table plus `created_at` (a full row: the store writes what it is given). */
  readonly values: WireRecord;
  readonly deleted: boolean;
  /** The sensitive values are already as stored (an undecryptable row's, kept as they are): written without encrypting. */
  readonly storedAsIs?: boolean;
}

export interface PushReceipt {
  readonly bodyHash: string;
  readonly response: unknown;
}

/**
 * One push, inside the transaction opened by `ChangeStore.inPushTransaction`. Every method sees
 * the caller's writes so far and only the caller's user.
 */
export interface PushTransaction {
  /** The receipt of an earlier push with this id, if it was stored at or after `notBeforeMs`. */
  findReceipt(pushId: string, notBeforeMs: number): ResultAsync<PushReceipt | null, SyncError>;
  /** The current rows with these ids (absent ids are simply missing from the map). */
  loadRows(table: TableSpec, ids: readonly string[]): ResultAsync<Map<string, StoredRow>, SyncError>;
  /**
   * Inserts or overwrites whole rows; each gets a fresh `last_modified_at`. `byDevice` records
   * the device as the author (its pulls will skip these versions); null marks server-made versions.
   */
  writeRows(table: TableSpec, rows: readonly RowWrite[], byDevice: string | null): ResultAsync<void, SyncError>;
  recordConflicts(conflicts: readonly Conflict[], resolvedAtMs: number): ResultAsync<void, SyncError>;
  /** Stores the receipt (replacing an expired one) and forgets this user's receipts older than `forgetBeforeMs`. */
  saveReceipt(pushId: string, receipt: PushReceipt, nowMs: number, forgetBeforeMs: number): ResultAsync<void, SyncError>;
  /** The user's newest stamp, a valid pull cursor once this transaction commits. */
  cursor(): ResultAsync<number, SyncError>;
  /** The newest stamp among the user's purged tombstones, as the lock found it (0 when none). */
  purgedThrough(): number;
  /**
   * Tells every server process, when (and only if) this transaction commits, that the user's mark
   * is now `mark`, written by `deviceId` (live pokes, see LiveFeed). At most one per push: a later
   * call replaces an earlier one.
   */
  announce(mark: number, deviceId: string | null): ResultAsync<void, SyncError>;
  /** The user's stored bytes (for the quota) as this transaction found them under the lock, plus its own additions. */
  storedBytes(): number;
  /** Adds `delta` (may be negative) to the user's stored bytes, written with the transaction's commit. */
  addStoredBytes(delta: number): void;
}

/**
 * Where synced rows live. Contract (checked by test/contract/change-store.contract.ts):
 * - every call is scoped to one user id; nothing reads or writes another user's rows;
 * - `inPushTransaction` runs `work` atomically while holding the user's write lock: all of its
 *   writes commit, or (when `work` returns an error or throws) none do;
 * - stamps are unique and strictly increasing per user, and `pullPage` never returns a cursor
 *   below which a write can still commit (spec §3);
 * - failures of the database come back as `UNAVAILABLE` (cannot reach it) or `INTERNAL`.
 */
export interface ChangeStore {
  pullPage(userId: string, query: PullQuery): ResultAsync<PullPage, SyncError>;
  /**
   * `receipt`, when given, tells that `work` will look up this push id's receipt with a
   * `notBeforeMs` at or after this one: a store may read it together with the lock (after the
   * lock is held, so a receipt committed while this push waited is seen).
   */
  inPushTransaction<T>(userId: string, work: (tx: PushTransaction) => ResultAsync<T, SyncError>, receipt?: ReceiptLookup): ResultAsync<T, SyncError>;
  /** Succeeds when the database answers. */
  ping(): ResultAsync<void, SyncError>;
}
