import type { Knex } from 'knex';
import { okAsync, type ResultAsync } from 'neverthrow';
import type { SyncError } from '../../domain';
import type { ChangeStore, PullPage, PullQuery, PushTransaction, ReceiptLookup } from '../../application/ports';

/** A hot standby as the router last judged it. */
export interface ReplicaState {
  /** host:port/database (never the credentials), for logs and metrics. */
  readonly name: string;
  readonly usable: boolean;
  /** How stale its data was at the last check, in ms (Infinity: unknown or unreachable). */
  readonly lagMs: number;
  /** Why it is skipped, or null. */
  readonly reason: string | null;
}

/** When the primary had flushed its WAL up to where. */
export interface LsnSample {
  readonly atMs: number;
  readonly lsn: bigint;
}

/**
 * How stale a standby's data is, from the primary's own samples: a standby that has replayed up
 * to `replayed` holds every commit the primary had flushed at the time of the newest sample at or
 * below it, so its data is at most `now - that time` old. No clock of the standby is read, and an
 * idle primary (no new WAL) never makes a caught-up standby look late, which
 * `now() - pg_last_xact_replay_timestamp()` does. Infinity when the standby is below every sample
 * kept (further behind than the samples reach).
 */
export function stalenessMs(samples: readonly LsnSample[], replayed: bigint, nowMs: number): number {
  for (let i = samples.length - 1; i >= 0; i--) if (samples[i]!.lsn <= replayed) return Math.max(0, nowMs - samples[i]!.atMs);
  return Infinity;
}

export interface ReplicaRouterOptions {
  /** A standby staler than this is skipped (SYNC_REPLICA_MAX_LAG_MS). */
  readonly maxLagMs: number;
  /** How often the standbys are checked; by default a quarter of maxLagMs, between 25 ms and 1 s. */
  readonly checkEveryMs?: number;
}

interface Log {
  warn(obj: object, message: string): void;
  info(obj: object, message: string): void;
}

interface Replica<D> {
  readonly name: string;
  readonly db: D;
  state: ReplicaState;
}

/** What the router asks the databases: the primary's WAL position, and each standby's state. */
export interface ReplicaProbes<D> {
  /** The primary's flushed WAL position, in bytes from 0/0. */
  primaryLsn(): Promise<bigint>;
  /** Whether the standby is in recovery, and how far it has replayed (null: nothing yet). */
  standby(db: D): Promise<{ readonly inRecovery: boolean; readonly replayed: bigint | null }>;
  close(db: D): Promise<void>;
}

const LSN_BYTES = (fn: string) => `(${fn} - '0/0'::pg_lsn)::text`;

/** The probes in SQL, on PostgreSQL through knex. */
export function knexProbes(primary: Knex): ReplicaProbes<Knex> {
  return {
    primaryLsn: async () => {
      const { rows } = (await primary.raw(`SELECT ${LSN_BYTES('pg_current_wal_flush_lsn()')} AS lsn`)) as { rows: Array<{ lsn: string }> };
      return BigInt(rows[0]!.lsn);
    },
    standby: async (db) => {
      const { rows } = (await db.raw(`SELECT pg_is_in_recovery() AS standby, ${LSN_BYTES('pg_last_wal_replay_lsn()')} AS replayed`)) as { rows: Array<{ standby: boolean; replayed: string | null }> };
      return { inRecovery: rows[0]!.standby, replayed: rows[0]!.replayed === null ? null : BigInt(rows[0]!.replayed) };
    },
    close: (db) => db.destroy(),
  };
}

/**
 * Chooses where a pull reads: a hot standby that answers and is no staler than the bound, in
 * turn, else the primary. The standbys are checked on a timer (never on a request's path): the
 * primary's flushed WAL position is sampled, then each standby's replay position, and
 * stalenessMs turns the two into a time. A pull that fails on a standby marks it unusable until
 * the next good check (see ReplicaRoutedChangeStore).
 */
export class ReplicaRouter<D = Knex> {
  private readonly replicas: Replica<D>[];
  private samples: LsnSample[] = [];
  private next = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private checking: Promise<void> | null = null;
  private closed = false;
  readonly checkEveryMs: number;
  /** Pulls read on each side, for the metrics. */
  readonly reads = { primary: 0, replica: 0 };
  /** Marks this process heard pushes announce (the live feed), while a usable standby may still lack them. */
  private readonly heard = new Map<string, { mark: number; atMs: number }>();

  constructor(
    private readonly probes: ReplicaProbes<D>,
    replicas: ReadonlyArray<{ readonly name: string; readonly db: D }>,
    private readonly options: ReplicaRouterOptions,
    private readonly log: Log,
    private readonly now: () => number = Date.now,
  ) {
    this.checkEveryMs = options.checkEveryMs ?? Math.min(1000, Math.max(25, Math.floor(options.maxLagMs / 4)));
    // Unusable until a first check has vouched for it.
    this.replicas = replicas.map((r) => ({ ...r, state: { name: r.name, usable: false, lagMs: Infinity, reason: 'not checked yet' } }));
  }

  /** Checks once (so a healthy standby serves from the first request), then on the timer. */
  async start(): Promise<void> {
    await this.check();
    if (this.closed) return;
    this.timer = setInterval(() => void this.check(), this.checkEveryMs);
    this.timer.unref();
  }

  /** The standby the next pull reads, or null for the primary. */
  pick(): { readonly name: string; readonly db: D } | null {
    const n = this.replicas.length;
    for (let k = 0; k < n; k++) {
      const r = this.replicas[(this.next + k) % n]!;
      if (r.state.usable) {
        this.next = (this.next + k + 1) % n;
        return r;
      }
    }
    return null;
  }

  /**
   * A push committed on the primary moved `userId`'s mark (the live feed hears every push). Kept
   * as long as a standby judged usable may not have replayed it: the bound plus two checks.
   */
  noteMark(userId: string, mark: number): void {
    const known = this.heard.get(userId);
    if (!known || known.mark < mark) this.heard.set(userId, { mark, atMs: this.now() });
  }

  /** The newest mark heard for the user that a usable standby may still lack, or null. */
  recentMark(userId: string): number | null {
    const known = this.heard.get(userId);
    return known && known.atMs >= this.now() - this.keepMarksMs() ? known.mark : null;
  }

  private keepMarksMs(): number {
    return this.options.maxLagMs + 2 * this.checkEveryMs;
  }

  /** A query failed on this standby: skip it until a check finds it well again. */
  failed(name: string, cause: unknown): void {
    const r = this.replicas.find((x) => x.name === name);
    if (r) this.judge(r, { ...r.state, usable: false, reason: `a pull failed on it: ${cause instanceof Error ? cause.message : String(cause)}` });
  }

  /** The standbys' databases, by name (each gets a store of its own). */
  replicaDatabases(): ReadonlyArray<{ readonly name: string; readonly db: D }> {
    return this.replicas;
  }

  states(): ReplicaState[] {
    return this.replicas.map((r) => r.state);
  }

  /** One check of every standby; a check still running when the timer fires again is not doubled. */
  check(): Promise<void> {
    return (this.checking ??= this.checkAll().finally(() => (this.checking = null)));
  }

  private async checkAll(): Promise<void> {
    const timeoutMs = Math.max(1000, this.options.maxLagMs);
    try {
      const lsn = await withTimeout(this.probes.primaryLsn(), timeoutMs);
      this.samples.push({ atMs: this.now(), lsn });
    } catch {
      // No sample: the last ones age, and standbys turn stale by the bound (their freshness can no longer be vouched for).
    }
    // Keep what the bound can use, and always the newest.
    const horizon = this.now() - this.options.maxLagMs - 2 * this.checkEveryMs;
    while (this.samples.length > 1 && this.samples[0]!.atMs < horizon) this.samples.shift();
    await Promise.all(this.replicas.map((r) => this.checkOne(r, timeoutMs)));
    const forget = this.now() - this.keepMarksMs();
    for (const [user, known] of this.heard) if (known.atMs < forget) this.heard.delete(user);
  }

  private async checkOne(r: Replica<D>, timeoutMs: number): Promise<void> {
    let next: ReplicaState;
    try {
      const { inRecovery, replayed } = await withTimeout(this.probes.standby(r.db), timeoutMs);
      if (!inRecovery) {
        // A promoted standby (or a primary named by mistake) may have diverged from DATABASE_URL.
        next = { name: r.name, usable: false, lagMs: Infinity, reason: 'it is not a hot standby (pg_is_in_recovery() is false)' };
      } else if (replayed === null) {
        next = { name: r.name, usable: false, lagMs: Infinity, reason: 'it has replayed no WAL yet' };
      } else {
        const lagMs = stalenessMs(this.samples, replayed, this.now());
        next =
          lagMs <= this.options.maxLagMs
            ? { name: r.name, usable: true, lagMs, reason: null }
            : { name: r.name, usable: false, lagMs, reason: `it lags more than SYNC_REPLICA_MAX_LAG_MS (${this.options.maxLagMs} ms)` };
      }
    } catch (e) {
      next = { name: r.name, usable: false, lagMs: Infinity, reason: `it does not answer: ${e instanceof Error ? e.message : String(e)}` };
    }
    this.judge(r, next);
  }

  /** Logs a change between usable and skipped (not every check). */
  private judge(r: Replica<D>, next: ReplicaState): void {
    const was = r.state;
    r.state = next;
    if (this.closed || was.usable === next.usable) return;
    if (next.usable) this.log.info({ replica: r.name, lagMs: next.lagMs }, 'read replica usable: pulls read there');
    else this.log.warn({ replica: r.name, reason: next.reason }, 'read replica skipped: pulls read on the primary');
  }

  /** Stops the checks and closes the standbys' pools (the primary is not the router's). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.checking?.catch(() => undefined);
    await Promise.all(this.replicas.map((r) => this.probes.close(r.db)));
  }
}

function withTimeout<T>(promise: PromiseLike<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  const answer = Promise.resolve(promise);
  // The query may still answer (or fail) after the timeout: nobody waits for it then.
  answer.catch(() => undefined);
  return Promise.race([answer, expired]).finally(() => clearTimeout(timer));
}

/**
 * The ChangeStore with pulls on the hot standbys: a pull is one statement, so its rows and its mark
 * come from one snapshot wherever it runs (docs/scaling.md, "Read replicas"). A pull that fails on
 * a standby is read again on the primary (a read: nothing to undo), and the standby skipped.
 * Pushes, and the readiness ping, stay on the primary.
 */
export class ReplicaRoutedChangeStore implements ChangeStore {
  constructor(
    private readonly primary: ChangeStore,
    private readonly replicas: ReadonlyMap<string, ChangeStore>,
    private readonly router: ReplicaRouter<unknown>,
  ) {}

  pullPage(userId: string, query: PullQuery): ResultAsync<PullPage, SyncError> {
    const onPrimary = () =>
      this.primary.pullPage(userId, query).map((page) => {
        this.router.reads.primary++;
        return page;
      });
    const pick = this.router.pick();
    const store = pick && this.replicas.get(pick.name);
    if (!pick || !store) return onPrimary();
    return store
      .pullPage(userId, query)
      .orElse((e) => {
        // A standby cut off, restarting, or cancelling the statement on a recovery conflict.
        this.router.failed(pick.name, e.cause ?? e.message);
        return okAsync(null);
      })
      .andThen((page) => {
        if (page === null) return onPrimary();
        // The standby has not replayed a push this process heard of (a live poke may have sent
        // the device here for it): the primary has it. Only for a page that ends the pull.
        const heard = this.router.recentMark(userId);
        if (heard !== null && !page.hasMore && page.highWater < heard) return onPrimary();
        this.router.reads.replica++;
        return okAsync(page);
      });
  }

  inPushTransaction<T>(userId: string, work: (tx: PushTransaction) => ResultAsync<T, SyncError>, receipt?: ReceiptLookup): ResultAsync<T, SyncError> {
    return this.primary.inPushTransaction(userId, work, receipt);
  }

  ping(): ResultAsync<void, SyncError> {
    return this.primary.ping();
  }
}
