import { errAsync, okAsync, ResultAsync } from 'neverthrow';
import { columnNames, cutPage, syncError, utf8Length, type Conflict, type PageCandidate, type PulledRow, type SyncError, type TableSpec, type WireRecord } from '../../src/domain';
import type { ChangeStore, PullPage, PullQuery, PushReceipt, PushTransaction, RowWrite, StoredRow } from '../../src/application/ports';

/**
 * The ChangeStore in memory, with KnexChangeStore's semantics (checked by
 * test/contract/change-store.contract.ts): per-user stamps `max(now(), last + 1)`, the stamp of a
 * row's first write, the author device of each version, push transactions serialized per user
 * and applied only when `work` succeeds, and pulls that see committed state only.
 */

export interface MemoryRow {
  /** id, the table's columns and created_at. */
  readonly values: WireRecord;
  readonly deleted: boolean;
  readonly lastModifiedAt: number;
  readonly firstWrittenAt: number;
  readonly firstWrittenBy: string | null;
  readonly lastModifiedBy: string | null;
}

export interface RecordedConflict extends Conflict {
  readonly resolvedAt: number;
}

export interface MemorySnapshot {
  readonly lastStamp: number;
  readonly rows: ReadonlyArray<MemoryRow & { readonly table: string }>;
  readonly conflicts: readonly RecordedConflict[];
  readonly receipts: ReadonlyArray<{ readonly pushId: string; readonly bodyHash: string; readonly createdAt: number }>;
}

interface UserState {
  readonly lastStamp: number;
  /** The newest stamp among purged tombstones. */
  readonly purgedThrough: number;
  readonly storedBytes?: number;
  /** table name → id → row */
  readonly tables: ReadonlyMap<string, ReadonlyMap<string, MemoryRow>>;
  readonly conflicts: readonly RecordedConflict[];
  readonly receipts: ReadonlyMap<string, { readonly receipt: PushReceipt; readonly createdAt: number }>;
}

const EMPTY: UserState = { lastStamp: 0, purgedThrough: 0, tables: new Map(), conflicts: [], receipts: new Map() };

export class MemoryChangeStore implements ChangeStore {
  private readonly users = new Map<string, UserState>();
  /** The marks committed pushes announced (PushTransaction.announce), in commit order. */
  readonly announced: Array<{ userId: string; mark: number; deviceId: string | null }> = [];
  private readonly locks = new Map<string, Promise<void>>();
  /** Calls waiting for a user's lock now. */
  waiting = 0;

  /** `now` gives the wall clock in ms; stamps are `max(now(), previous + 1)`. */
  constructor(private readonly now: () => number = Date.now) {}

  pullPage(userId: string, query: PullQuery): ResultAsync<PullPage, SyncError> {
    const state = this.users.get(userId) ?? EMPTY;
    const highWater = state.lastStamp;
    const maxBytes = query.maxBytes ?? Number.MAX_SAFE_INTEGER;
    const candidates: PageCandidate<PulledRow>[] = [];
    let openBelow = Infinity;
    for (const table of query.tables) {
      const from = query.fullTables.has(table.name) ? 0 : (query.since ?? 0);
      const found = [...(state.tables.get(table.name)?.values() ?? [])]
        .filter((r) => r.lastModifiedAt > from && r.lastModifiedAt <= highWater)
        .filter((r) => (from === 0 ? !r.deleted : query.excludeDevice === null || r.lastModifiedBy !== query.excludeDevice))
        .sort((a, b) => a.lastModifiedAt - b.lastModifiedAt)
        .slice(0, query.limit + 1);
      // As the SQL store reads a table: its rows up to the one that crosses maxBytes (a row's
      // size here: its values as JSON).
      let upto = 0;
      let taken = 0;
      for (const r of found) {
        if (upto >= maxBytes) break;
        const bytes = utf8Length(JSON.stringify(r.values));
        upto += bytes;
        taken++;
        candidates.push({
          row: {
            table: table.name,
            values: { ...r.values, last_modified_at: r.lastModifiedAt },
            deleted: r.deleted,
            lastModifiedAt: r.lastModifiedAt,
            firstWrittenAt: r.firstWrittenAt,
            firstWrittenBy: r.firstWrittenBy,
          },
          stamp: r.lastModifiedAt,
          bytes,
        });
      }
      if (taken > 0 && (taken === query.limit + 1 || taken < found.length)) openBelow = Math.min(openBelow, found[taken - 1]!.lastModifiedAt);
    }
    candidates.sort((a, b) => a.stamp - b.stamp);
    const { rows, hasMore } = cutPage(candidates, openBelow, query.limit, maxBytes);
    return okAsync({ rows, hasMore, highWater, purgedThrough: state.purgedThrough });
  }

  inPushTransaction<T>(userId: string, work: (tx: PushTransaction) => ResultAsync<T, SyncError>): ResultAsync<T, SyncError> {
    const run = async (): Promise<T> => {
      const tx = new MemoryPushTransaction(this.users.get(userId) ?? EMPTY, this.now);
      try {
        const result = await work(tx);
        if (result.isErr()) throw new Rollback(result.error);
        // Like PostgreSQL after a failed statement: the transaction can only roll back.
        if (tx.failed) throw new Error('a statement of this transaction failed; it was rolled back');
        this.users.set(userId, tx.commit());
        // Like NOTIFY: heard at commit only.
        if (tx.announcement) this.announced.push({ userId, ...tx.announcement });
        return result.value;
      } finally {
        tx.close();
      }
    };
    return ResultAsync.fromPromise(this.exclusive(userId, run), (e) =>
      e instanceof Rollback ? e.error : { ...syncError('INTERNAL', 'The server failed to process the request.'), cause: e },
    );
  }

  ping(): ResultAsync<void, SyncError> {
    return okAsync(undefined);
  }

  /**
   * Forgets every user's tombstones stamped before `beforeMs`, as the retention job does, moving
   * each user's purge horizon to the newest stamp it purged. Returns how many were purged.
   */
  purgeTombstones(beforeMs: number): number {
    let purged = 0;
    for (const [userId, state] of this.users) {
      let horizon = state.purgedThrough;
      const tables = new Map<string, Map<string, MemoryRow>>();
      for (const [name, rows] of state.tables) {
        const kept = new Map<string, MemoryRow>();
        for (const [id, r] of rows) {
          if (r.deleted && r.lastModifiedAt < beforeMs) {
            purged++;
            horizon = Math.max(horizon, r.lastModifiedAt);
          } else kept.set(id, r);
        }
        tables.set(name, kept);
      }
      this.users.set(userId, { ...state, tables, purgedThrough: horizon });
    }
    return purged;
  }

  /** The conflicts recorded for a user, oldest first. */
  conflictsOf(userId: string): RecordedConflict[] {
    return [...(this.users.get(userId)?.conflicts ?? [])];
  }

  /** A copy of everything committed for a user (tombstones, receipts, the last stamp), for "nothing was written" checks. */
  snapshot(userId: string): MemorySnapshot {
    const state = this.users.get(userId) ?? EMPTY;
    const rows: Array<MemoryRow & { table: string }> = [];
    for (const [table, byId] of state.tables) for (const r of byId.values()) rows.push({ table, ...r, values: { ...r.values } });
    rows.sort((a, b) => a.lastModifiedAt - b.lastModifiedAt);
    const receipts = [...state.receipts].map(([pushId, saved]) => ({ pushId, bodyHash: saved.receipt.bodyHash, createdAt: saved.createdAt }));
    return { lastStamp: state.lastStamp, rows, conflicts: this.conflictsOf(userId), receipts };
  }

  /** Runs `fn` after every earlier call for this user has settled. */
  private async exclusive<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(userId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.locks.set(userId, tail);
    this.waiting++;
    await previous.finally(() => this.waiting--);
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(userId) === tail) this.locks.delete(userId);
    }
  }
}

class Rollback extends Error {
  constructor(readonly error: SyncError) {
    super(error.message);
  }
}

/** Works on copies of the user's maps; `commit()` hands them back to the store in one assignment. */
class MemoryPushTransaction implements PushTransaction {
  private lastStamp: number;
  private readonly purged: number;
  private stored: number;
  private readonly tables: Map<string, Map<string, MemoryRow>>;
  private readonly conflicts: RecordedConflict[];
  private readonly receipts: Map<string, { receipt: PushReceipt; createdAt: number }>;
  private open = true;
  /** A step failed: like an aborted PostgreSQL transaction, this one cannot commit. */
  failed = false;

  constructor(
    state: UserState,
    private readonly now: () => number,
  ) {
    this.lastStamp = state.lastStamp;
    this.purged = state.purgedThrough;
    this.stored = state.storedBytes ?? 0;
    this.tables = new Map([...state.tables].map(([name, rows]) => [name, new Map(rows)]));
    this.conflicts = [...state.conflicts];
    this.receipts = new Map(state.receipts);
  }

  findReceipt(pushId: string, notBeforeMs: number): ResultAsync<PushReceipt | null, SyncError> {
    return this.guard(() => {
      const saved = this.receipts.get(pushId);
      return saved && saved.createdAt >= notBeforeMs ? { bodyHash: saved.receipt.bodyHash, response: cloneJson(saved.receipt.response) } : null;
    });
  }

  loadRows(table: TableSpec, ids: readonly string[]): ResultAsync<Map<string, StoredRow>, SyncError> {
    return this.guard(() => {
      const rows = this.tables.get(table.name);
      const found = new Map<string, StoredRow>();
      for (const id of ids) {
        const r = rows?.get(id);
        if (r) found.set(id, { values: { ...r.values }, deleted: r.deleted, lastModifiedAt: r.lastModifiedAt, lastModifiedBy: r.lastModifiedBy });
      }
      return found;
    });
  }

  writeRows(table: TableSpec, rows: readonly RowWrite[], byDevice: string | null): ResultAsync<void, SyncError> {
    return this.guard(() => {
      let stored = this.tables.get(table.name);
      if (!stored) this.tables.set(table.name, (stored = new Map()));
      for (const write of rows) {
        const createdAt = write.values['created_at'];
        // The database refuses a row without created_at (NOT NULL), failing the push.
        if (typeof createdAt !== 'number') throw new Error(`${table.name} ${write.id}: created_at is required`);
        const values: WireRecord = { id: write.id };
        for (const c of columnNames(table)) values[c] = write.values[c] ?? null;
        values['created_at'] = createdAt;
        const stamp = (this.lastStamp = Math.max(this.now(), this.lastStamp + 1));
        const previous = stored.get(write.id);
        stored.set(write.id, {
          values,
          deleted: write.deleted,
          lastModifiedAt: stamp,
          firstWrittenAt: previous?.firstWrittenAt ?? stamp,
          firstWrittenBy: previous ? previous.firstWrittenBy : byDevice,
          lastModifiedBy: byDevice,
        });
      }
    });
  }

  recordConflicts(conflicts: readonly Conflict[], resolvedAtMs: number): ResultAsync<void, SyncError> {
    return this.guard(() => {
      for (const c of conflicts) this.conflicts.push({ ...c, clientColumns: [...c.clientColumns], serverColumns: [...c.serverColumns], resolvedAt: resolvedAtMs });
    });
  }

  saveReceipt(pushId: string, receipt: PushReceipt, nowMs: number, forgetBeforeMs: number): ResultAsync<void, SyncError> {
    return this.guard(() => {
      for (const [id, saved] of this.receipts) if (saved.createdAt < forgetBeforeMs) this.receipts.delete(id);
      this.receipts.set(pushId, { receipt: { bodyHash: receipt.bodyHash, response: cloneJson(receipt.response) }, createdAt: nowMs });
    });
  }

  cursor(): ResultAsync<number, SyncError> {
    return this.guard(() => Math.max(1, this.lastStamp));
  }

  purgedThrough(): number {
    return this.purged;
  }

  announcement: { mark: number; deviceId: string | null } | null = null;

  announce(mark: number, deviceId: string | null): ResultAsync<void, SyncError> {
    return this.guard(() => void (this.announcement = { mark, deviceId }));
  }

  storedBytes(): number {
    return this.stored;
  }

  addStoredBytes(delta: number): void {
    this.stored = Math.max(0, this.stored + delta);
  }

  commit(): UserState {
    return { lastStamp: this.lastStamp, purgedThrough: this.purged, storedBytes: this.stored, tables: this.tables, conflicts: this.conflicts, receipts: this.receipts };
  }

  close(): void {
    this.open = false;
  }

  /** Runs one step, as a statement would: a fault becomes INTERNAL, and a closed transaction refuses work. */
  private guard<T>(step: () => T): ResultAsync<T, SyncError> {
    if (!this.open) return errAsync(syncError('INTERNAL', 'The push transaction is already closed.'));
    try {
      return okAsync(step());
    } catch (cause) {
      this.failed = true;
      return errAsync({ ...syncError('INTERNAL', 'The server failed to process the request.'), cause });
    }
  }
}

/** Receipts are stored as JSON by the database: what comes back is a copy, never the caller's object. */
function cloneJson(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}
