/**
 * One sync run (spec §5): table by table in priority order, pull every page (each applied in one
 * local transaction before its table's checkpoint moves), then push the table's pending rows in
 * batches, up to PUSHES_IN_FLIGHT at once, each with a push_id that a retry of the same batch
 * reuses (each batch in flight keeps its attempt in a slot of the checkpoint store, so this holds
 * across an app kill too). A batch the server refuses as invalid has the named records
 * quarantined and the rest pushed again, so one bad record never blocks the queue.
 */
import { err, ok, type Result } from 'neverthrow';
import { TABLES, type TableSpec } from '../../src/domain';
import type { ConflictEvent, LocalDatabase, PendingRow } from './local-database';
import type { CheckpointStore, PullHead, PullMigration, PushAttempt, PushBody, SyncTransport, TransportFailure } from './ports';

export interface SyncOptions {
  /** Only tables of this priority or a more urgent one (1 = captures only). */
  readonly priority?: number;
  /** Only this table. */
  readonly entity?: string;
}

export interface TableReport {
  pulled: number;
  pushed: number;
  conflicts: number;
  quarantined: number;
}

export interface SyncReport {
  readonly tables: Record<string, TableReport>;
  /** Every conflict this run resolved, on the device (pull merges) or on the server (push). */
  readonly conflicts: readonly ConflictEvent[];
}

export interface SyncEngineOptions {
  /** Records per push (spec §5: at most 100 by default). */
  readonly batchSize: number;
  /** Rows per pull page; the server's default when absent. */
  readonly pullLimit?: number;
  /** Hears each conflict as it is resolved (also in a run that fails later). */
  readonly onConflicts?: (events: readonly ConflictEvent[]) => void;
  /** The tables to sync, as the local schema stores them; the domain's when absent. */
  readonly tables?: readonly TableSpec[];
}

type PulledPage = Awaited<ReturnType<SyncTransport['pull']>>;
/** A page request's outcome, a throw included (held as a value until the engine is ready for it). */
type Fetched = { result: PulledPage } | { thrown: unknown };
/** A page asked for, and its outcome to come. */
interface AskedPage {
  readonly lastPulledAt: number | null;
  readonly fetched: Promise<Fetched>;
}
/**
 * Pages asked for ahead of the one being applied. Each holds up to the pull limit's rows in the
 * phone's memory; a second one ahead gained about 2% on a loopback first sync.
 */
const PAGES_AHEAD = 1;

/**
 * Batches of a table pushed before the one before is answered. The server applies one user's
 * pushes one at a time (its user lock) and batches hold different rows, so their order does not
 * matter; with a second in flight the phone reads, builds and sends the next batch while the
 * server works on the last (a 10k backlog in batches of 100: about a quarter less time on
 * loopback, docs/performance.md). Each batch in flight keeps its attempt in a slot of its own, so
 * every unanswered push is replayed with its push_id after a failure or a kill.
 */
export const PUSHES_IN_FLIGHT = 2;

/** A pushed batch's outcome, a throw included (held as a value until it is its turn). */
type Pushed = { result: Result<void, TransportFailure> } | { thrown: unknown };

/** The attempt slot a batch holds (null: none yet, or given back), shared by the pieces it splits into. */
interface Holding {
  slot: number | null;
}

/**
 * A table's push attempt slots during one push run: what each keeps (as stored), and which are
 * held by a batch in flight.
 */
class AttemptSlots {
  private readonly held = new Set<number>();

  private constructor(
    private readonly checkpoints: CheckpointStore,
    private readonly table: string,
    private readonly kept: Array<PushAttempt | null>,
  ) {}

  static async load(checkpoints: CheckpointStore, table: string): Promise<AttemptSlots> {
    const kept: Array<PushAttempt | null> = [];
    for (let slot = 0; slot < PUSHES_IN_FLIGHT; slot++) kept.push(await checkpoints.getPushAttempt(table, slot));
    return new AttemptSlots(checkpoints, table, kept);
  }

  /**
   * The attempt to send a batch of fingerprint `key` under: the one kept for that key (a retry, or
   * a replay after a kill) in the batch's own slot or a slot no other batch holds; otherwise a new
   * one, stored in the batch's own slot or a free one (an empty one first) before it is returned,
   * so no push is ever sent unrecorded.
   */
  async attempt(own: Holding, key: string, fresh: () => PushAttempt): Promise<PushAttempt> {
    const mine = own.slot;
    const same = this.kept.findIndex((a, slot) => a?.key === key && (slot === mine || !this.held.has(slot)));
    if (same >= 0) {
      if (mine !== null && mine !== same) this.held.delete(mine);
      this.held.add((own.slot = same));
      return this.kept[same]!;
    }
    let slot = mine;
    if (slot === null) {
      const free = [...this.kept.keys()].filter((s) => !this.held.has(s));
      slot = free.find((s) => this.kept[s] === null) ?? free[0] ?? null;
      // At most PUSHES_IN_FLIGHT batches are in flight, each holding at most one slot.
      if (slot === null) throw new Error(`no free push attempt slot for ${this.table}`);
    }
    this.held.add((own.slot = slot));
    const attempt = fresh();
    this.kept[slot] = attempt;
    await this.checkpoints.setPushAttempt(this.table, attempt, slot);
    return attempt;
  }

  /** The batch's push was answered and applied locally: its slot is emptied and free again. */
  async answered(own: Holding): Promise<void> {
    const slot = own.slot;
    if (slot === null) return;
    this.kept[slot] = null;
    await this.checkpoints.setPushAttempt(this.table, null, slot);
    this.held.delete(slot);
    own.slot = null;
  }

  /** Whether a push of an earlier run is unanswered (the table is then pushed before it is pulled). */
  anyKept(): boolean {
    return this.kept.some((a) => a !== null);
  }

  /** The batch stops unanswered: its attempt stays kept for the next run; the slot is free. */
  giveBack(own: Holding): void {
    if (own.slot !== null) this.held.delete(own.slot);
    own.slot = null;
  }

  /**
   * After every pending row was pushed and answered: what the slots still keep (a batch's attempt
   * before it split, or one left by a kill whose rows went again in other batches) can match no
   * batch any more, and would only make the next run push before it pulls.
   */
  async clear(): Promise<void> {
    for (let slot = 0; slot < this.kept.length; slot++) {
      if (this.kept[slot] === null || this.held.has(slot)) continue;
      this.kept[slot] = null;
      await this.checkpoints.setPushAttempt(this.table, null, slot);
    }
  }
}

export class SyncEngine {
  constructor(
    private readonly local: LocalDatabase,
    private readonly transport: SyncTransport,
    private readonly checkpoints: CheckpointStore,
    private readonly newPushId: () => string,
    private readonly options: SyncEngineOptions,
  ) {}

  private record(into: ConflictEvent[], events: readonly ConflictEvent[]): void {
    if (events.length === 0) return;
    into.push(...events);
    this.options.onConflicts?.(events);
  }

  tablesFor(options: SyncOptions): TableSpec[] {
    const tables = this.options.tables ?? TABLES;
    if (options.entity !== undefined && !tables.some((t) => t.name === options.entity)) throw new Error(`Unknown table "${options.entity}".`);
    return tables.filter((t) => (options.entity === undefined || t.name === options.entity) && (options.priority === undefined || t.priority <= options.priority));
  }

  /** `report` fills in as the run goes, so a caller can read how far a failed run got. */
  async run(options: SyncOptions = {}, report: SyncReport = { tables: {}, conflicts: [] }): Promise<Result<SyncReport, TransportFailure>> {
    const conflicts = report.conflicts as ConflictEvent[];
    for (const table of this.tablesFor(options)) {
      const tr: TableReport = (report.tables[table.name] = { pulled: 0, pushed: 0, conflicts: 0, quarantined: 0 });
      // A push whose answer never came may be on the server already, older than what a pull would
      // now bring: settled first, or the pull's merge would keep it as if it were a newer local edit
      // (and its replayed answer would then mark it clean while the server holds the later write).
      // Read once for the run: only this run's pushes change the slots meanwhile.
      const slots = await AttemptSlots.load(this.checkpoints, table.name);
      // The server purged deletes newer than this table's cursor (CURSOR_EXPIRED): once per run,
      // the table starts over as a first sync (its local changes stay pending, and rows the
      // server no longer has are dropped), then pushes against what it now has seen.
      let restarted = false;
      const restart = async (failure: TransportFailure): Promise<boolean> => {
        if (restarted || failure.code !== 'CURSOR_EXPIRED') return false;
        restarted = true;
        // An unanswered push refused as expired was not applied: its rows are still pending.
        await slots.clear();
        await this.checkpoints.setLastPulledAt(table.name, null);
        return true;
      };
      if (slots.anyKept()) {
        const settled = await this.pushTable(table, tr, conflicts, slots);
        if (settled.isErr() && !(await restart(settled.error))) return err(settled.error);
      }
      let pulled = await this.pullTable(table, tr, conflicts);
      if (pulled.isErr() && (await restart(pulled.error))) pulled = await this.pullTable(table, tr, conflicts);
      if (pulled.isErr()) return err(pulled.error);
      let pushed = await this.pushTable(table, tr, conflicts, slots);
      if (pushed.isErr() && (await restart(pushed.error))) {
        const again = await this.pullTable(table, tr, conflicts);
        if (again.isErr()) return err(again.error);
        pushed = await this.pushTable(table, tr, conflicts, slots);
      }
      if (pushed.isErr()) return err(pushed.error);
    }
    return ok(report);
  }

  private async pullTable(table: TableSpec, tr: TableReport, conflicts: ConflictEvent[]): Promise<Result<void, TransportFailure>> {
    let since = await this.checkpoints.getLastPulledAt(table.name);
    // Columns a schema upgrade added (docs/mobile.md, "Upgrading the local schema"): the first page
    // asks with `migration`, so the server sends every live row of the table from the start, and
    // the pass then runs as a first sync does (every page unfiltered, unseen rows swept, the cursor
    // saved at the end), as rows deleted since the cursor come as no tombstone. Owed until the pass
    // completes: cut off, it is asked again on the next sync.
    const owed = await this.local.pendingPull(table.name);
    const migration: PullMigration | undefined = owed && since !== null ? { from: owed.from, tables: [], columns: [{ table: table.name, columns: owed.columns }] } : undefined;
    // A first sync (no cursor) gets the server's live rows and no deletes (spec §4.1). Rows this
    // device already holds from the server but that the server no longer has (a first sync cut
    // off after a page was applied, or a table re-pulled after discarding a quarantined record)
    // would then stay forever: so a first sync notes every id it receives, and only once its last
    // page is in does it drop the unseen clean rows and save its cursor. Cut off before that, it
    // starts over.
    const seen = since === null || migration ? new Set<string>() : null;
    // Only rows synced before this pull can be unseen: a fresh device (the common first sync) has
    // none, and skips the sweep, which costs about 0.1 s per 100k rows.
    const sweep = seen !== null && (await this.local.hasSyncedRows(table.name));
    // The next page's request needs only this page's cursor, so it is asked for while this page
    // is applied, and as soon as the server names that cursor in its answer's head, before the
    // body has arrived (meanwhile the server reads the next page, and the phone inflates and
    // parses this one). Nothing else changes: a page is applied, then its cursor saved, strictly
    // in order, and a page fetched but never applied (a failure or a kill meanwhile) is fetched
    // again. Pages asked for and not yet applied: at most PAGES_AHEAD, besides the one applied.
    // `migration` goes on the first page only: the next ones resume after its cursor (docs/protocol.md).
    let unsent = migration;
    const fetchPage = (lastPulledAt: number | null, onHead: (head: PullHead) => void): Promise<Fetched> => {
      const once = unsent;
      unsent = undefined;
      return this.transport
        .pull({
          lastPulledAt,
          tables: [table.name],
          // A first sync wants this device's own rows too (it may have lost its database), on every page.
          suppressEcho: seen === null,
          ...(this.options.pullLimit ? { limit: this.options.pullLimit } : {}),
          ...(once ? { migration: once } : {}),
          onHead,
        })
        // Held as a value: a prefetch that throws while the page before it is applied must not go unhandled.
        .then(
          (result) => ({ result }),
          (thrown: unknown) => ({ thrown }),
        );
    };
    const ahead: AskedPage[] = [];
    // The cursor to ask for once there is room: null while unknown, or when no page is left.
    let wanted: { readonly at: number | null } | null = { at: since };
    let newest: AskedPage | null = null;
    const pump = (): void => {
      while (wanted && ahead.length < PAGES_AHEAD) {
        // Listed before it is asked for: a transport may tell the head before `pull` returns.
        const page = { lastPulledAt: wanted.at } as { lastPulledAt: number | null; fetched: Promise<Fetched> };
        wanted = null;
        newest = page;
        ahead.push(page);
        page.fetched = fetchPage(page.lastPulledAt, (head) => {
          // Only the newest page's head names the page to ask for next.
          if (newest !== page || wanted !== null || !head.hasMore) return;
          wanted = { at: head.timestamp };
          pump();
        });
      }
    };
    pump();
    while (ahead.length > 0) {
      const current = ahead.shift()!;
      pump();
      const fetched: Fetched = await current.fetched;
      if ('thrown' in fetched) throw fetched.thrown;
      const page: PulledPage = fetched.result;
      if (page.isErr()) return err(page.error);
      // The body is the answer: pages asked for on a head that disagrees with it are dropped.
      if (page.value.has_more ? ahead[0]?.lastPulledAt !== page.value.timestamp : ahead.length > 0) {
        ahead.length = 0;
        newest = null;
        wanted = page.value.has_more ? { at: page.value.timestamp } : null;
        pump();
      }
      const own = page.value.changes[table.name];
      if (own) {
        const { applied, merges } = await this.local.applyPulled({ [table.name]: own });
        tr.pulled += applied;
        this.record(conflicts, merges);
        tr.conflicts += merges.length;
        if (seen) {
          for (const r of own.created) seen.add(r['id'] as string);
          for (const r of own.updated) seen.add(r['id'] as string);
          for (const id of own.deleted) seen.delete(id);
        }
      }
      since = page.value.timestamp;
      if (seen === null) {
        // Only after the page is committed locally: a crash before this line replays the page.
        await this.checkpoints.setLastPulledAt(table.name, since);
      }
    }
    if (seen) {
      if (sweep) tr.pulled += await this.local.dropUnseenSynced(table.name, seen);
      await this.checkpoints.setLastPulledAt(table.name, since);
    }
    // After the cursor: a kill in between asks once more, which is harmless.
    if (owed) await this.local.pullCompleted(table.name);
    return ok(undefined);
  }

  private async pushTable(table: TableSpec, tr: TableReport, conflicts: ConflictEvent[], slots: AttemptSlots): Promise<Result<void, TransportFailure>> {
    const lastPulledAt = await this.checkpoints.getLastPulledAt(table.name);
    // Each batch is read while the one before is in flight: its rows are others (rowids after
    // that batch's last), and a row edited after it is read keeps its edit pending, as for any
    // edit made while its batch is in flight (markPushed checks _version). Held as a value, so a
    // read left behind by a failed batch never goes unhandled.
    const read = (after: number) =>
      this.local.pendingBatch(table.name, after, this.options.batchSize).then(
        (rows) => ({ rows }),
        (thrown: unknown) => ({ thrown }),
      );
    const inFlight: Array<Promise<Pushed>> = [];
    let stop: Pushed | null = null;
    let next = read(0);
    for (;;) {
      const taken = await next;
      if ('thrown' in taken) {
        stop = taken;
        break;
      }
      const batch = taken.rows;
      if (batch.length === 0) break;
      next = read(batch[batch.length - 1]!.rowid);
      const own: Holding = { slot: null };
      inFlight.push(
        this.pushBatch(table, batch, lastPulledAt, tr, conflicts, slots, own)
          .finally(() => slots.giveBack(own))
          .then(
            (result) => ({ result }),
            (thrown: unknown) => ({ thrown }),
          ),
      );
      if (inFlight.length < PUSHES_IN_FLIGHT) continue;
      const done = await inFlight.shift()!;
      if ('thrown' in done || done.result.isErr()) {
        stop = done;
        break;
      }
    }
    // The batches still in flight end before the run does (each is marked pushed, or keeps its
    // attempt for the next run): nothing goes on behind a failed run.
    for (const pending of inFlight) {
      const done = await pending;
      if (stop === null && ('thrown' in done || done.result.isErr())) stop = done;
    }
    if (stop !== null) {
      if ('thrown' in stop) throw stop.thrown;
      return stop.result;
    }
    await slots.clear();
    return ok(undefined);
  }

  /** Pushes one batch (and the pieces a 413 splits it into, one after the other), its attempt in the slot `own` holds. */
  private async pushBatch(
    table: TableSpec,
    batch: readonly PendingRow[],
    lastPulledAt: number | null,
    tr: TableReport,
    conflicts: ConflictEvent[],
    slots: AttemptSlots,
    own: Holding,
  ): Promise<Result<void, TransportFailure>> {
    let rows = batch;
    while (rows.length > 0) {
      const changes = {
        [table.name]: {
          created: rows.filter((r) => r.kind === 'created').map((r) => r.record),
          updated: rows.filter((r) => r.kind === 'updated').map((r) => r.record),
          deleted: rows.filter((r) => r.kind === 'deleted').map((r) => r.record['id'] as string),
        },
      };
      // A retry of the same records sends the very same body (even if a pull moved the cursor
      // meanwhile), so a push whose answer was lost is replayed by the server, not applied twice.
      const key = fingerprint(JSON.stringify(changes));
      const attempt = await slots.attempt(own, key, () => ({ key, pushId: this.newPushId(), lastPulledAt }));
      const body: PushBody = { last_pulled_at: attempt.lastPulledAt, push_id: attempt.pushId, changes };
      const answer = await this.transport.push(body);
      if (answer.isOk()) {
        await this.local.markPushed(table.name, rows, answer.value.timestamp);
        await slots.answered(own);
        tr.pushed += rows.length;
        tr.conflicts += answer.value.conflicts.length;
        this.record(
          conflicts,
          answer.value.conflicts.map((c) => ({
            table: c.table,
            id: c.id,
            type: c.type as ConflictEvent['type'],
            resolution: c.resolution as ConflictEvent['resolution'],
            clientColumns: c.client_columns ?? [],
            serverColumns: c.server_columns ?? [],
            detectedBy: 'server' as const,
          })),
        );
        return ok(undefined);
      }
      const failure = answer.error;
      if (failure.status === 413 && rows.length > 1) {
        const half = Math.ceil(rows.length / 2);
        const first = await this.pushBatch(table, rows.slice(0, half), lastPulledAt, tr, conflicts, slots, own);
        return first.isErr() ? first : this.pushBatch(table, rows.slice(half), lastPulledAt, tr, conflicts, slots, own);
      }
      if (failure.status !== 400 && failure.status !== 413) return err(failure);
      // Invalid: set aside the records the server named, or the one record too large to send. A
      // refusal that names none of them is not the records' fault: it is reported, nothing is set aside.
      const ids = new Set(rows.map((r) => r.record['id'] as string));
      const reasons = new Map<string, string>();
      for (const d of failure.details ?? []) {
        if (d.id !== undefined && ids.has(d.id) && (d.table === undefined || d.table === table.name)) {
          reasons.set(d.id, [reasons.get(d.id), d.column ? `${d.column}: ${d.reason}` : d.reason].filter(Boolean).join('; '));
        }
      }
      if (failure.status === 413 && rows.length === 1) reasons.set(rows[0]!.record['id'] as string, failure.message);
      if (reasons.size === 0) return err(failure);
      await this.local.quarantine(table.name, [...reasons].map(([id, reason]) => ({ id, reason })));
      tr.quarantined += reasons.size;
      rows = rows.filter((r) => !reasons.has(r.record['id'] as string));
    }
    return ok(undefined);
  }
}

/**
 * A 53-bit fingerprint of a batch (cyrb53): enough to tell this table's next batch from the last
 * one, and short enough for AsyncStorage, unlike the batch itself.
 */
export function fingerprint(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36) + `:${text.length}`;
}
