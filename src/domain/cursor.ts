/**
 * The pull cursor (spec §3, §4.1). The server stamps every row write of a user with a
 * `last_modified_at` that is unique and strictly increasing for that user, so a single number
 * says exactly how far a client has read, across all tables.
 */
import { emptyTableChanges, type ChangeSet } from './change-set';
import type { TableSpec, WireRecord } from './schema';

/** A row version read for a pull, in `last_modified_at` order. */
export interface PulledRow {
  readonly table: string;
  readonly values: WireRecord;
  readonly deleted: boolean;
  readonly lastModifiedAt: number;
  /** The stamp of the row's first write on the server. */
  readonly firstWrittenAt: number;
  /** The device whose push first wrote the row, if a push did. */
  readonly firstWrittenBy: string | null;
}

/** WatermelonDB rejects 0 and null, so even an empty account gets a positive cursor. */
export const MIN_CURSOR = 1;

/**
 * The cursor a pull returns. A full page resumes right after its last row; otherwise the
 * snapshot's high-water mark, below which every write of the user has committed.
 */
export function nextCursor(since: number | null, rows: readonly PulledRow[], hasMore: boolean, highWater: number): number {
  const last = rows[rows.length - 1];
  if (hasMore && last) return last.lastModifiedAt;
  return Math.max(since ?? 0, highWater, MIN_CURSOR);
}

/** A row read for a page, its size as the store counts it, and the table read it came from. */
export interface PageCandidate<R> {
  readonly row: R;
  readonly stamp: number;
  readonly bytes: number;
}

/**
 * Cuts a pull page out of rows read per table (each table's next rows above the cursor, in stamp
 * order), merged and sorted by stamp. A table read that may have stopped short (`openBelow`: the
 * lowest last stamp among such reads, Infinity when none did) leaves rows above its last stamp
 * unknown, so the page ends there at the latest. Within that, the page takes rows in stamp order
 * while it has fewer than `limit` rows and fewer than `maxBytes` bytes: the row that crosses
 * `maxBytes` is the page's last, so a page always holds at least one row and a single row larger
 * than `maxBytes` still goes. The page is a prefix of the stamp order with no two rows of one
 * stamp, so resuming after its last row skips nothing (see nextCursor).
 */
export function cutPage<R>(sorted: readonly PageCandidate<R>[], openBelow: number, limit: number, maxBytes: number): { rows: R[]; hasMore: boolean } {
  const rows: R[] = [];
  let bytes = 0;
  for (const c of sorted) {
    if (c.stamp > openBelow || rows.length >= limit || (rows.length > 0 && bytes >= maxBytes)) return { rows, hasMore: true };
    rows.push(c.row);
    bytes += c.bytes;
  }
  return { rows, hasMore: openBelow !== Infinity };
}

/**
 * Sorts pulled rows into WatermelonDB's buckets. `fullTables` are sent as for a first sync
 * (no `since`): their rows are all `created` and their tombstones are left out. On an incremental
 * pull, a row the pulling device created itself is `updated` (it has it already).
 */
export function classifyRows(tables: readonly TableSpec[], rows: readonly PulledRow[], since: number | null, fullTables: ReadonlySet<string>, deviceId: string | null = null): ChangeSet {
  const changes: ChangeSet = {};
  for (const t of tables) changes[t.name] = emptyTableChanges();
  for (const row of rows) {
    const bucket = changes[row.table];
    if (!bucket) continue;
    const from = fullTables.has(row.table) ? 0 : (since ?? 0);
    const id = row.values['id'] as string;
    if (row.deleted) {
      if (from > 0) bucket.deleted.push(id);
    } else if (row.firstWrittenAt > from && !(from > 0 && deviceId !== null && row.firstWrittenBy === deviceId)) bucket.created.push(row.values);
    else bucket.updated.push(row.values);
  }
  return changes;
}

/**
 * A cursor older than the newest purged tombstone may have missed a delete (retention,
 * docs/protocol.md): the client must sync from the start. A first sync (no cursor) never is.
 */
export function cursorExpired(since: number | null, purgedThrough: number): boolean {
  return since !== null && since < purgedThrough;
}

export const CURSOR_EXPIRED_MESSAGE =
  'last_pulled_at is older than the deletions this server keeps (they were purged); sync from the start (last_pulled_at null) and keep your local changes, then push them.';
