/**
 * External stores for `useSyncExternalStore`: one per query or record a component reads. A store
 * listens to the local database's change events for its table (and row) while a component is
 * subscribed, re-reads once per batch of events (events during a read make exactly one more read
 * after it), and publishes a new snapshot only when the result differs from the last one, row by
 * row and column by column, so an unrelated change re-renders nothing.
 */
import type { WireRecord } from '../../../src/domain';
import type { ChangeEvent, LocalDatabase } from '../local-database';

export interface QueryResult {
  /** The rows, in the query's order; the same array (identity) until a read finds a difference. */
  readonly records: readonly WireRecord[];
  /** True until the first read ends. */
  readonly loading: boolean;
  /** The last read's failure (unknown table or column, database closed); `records` keep the last good result. */
  readonly error: Error | null;
}

export interface RecordResult {
  /** The row, or null when there is none (or it is deleted). */
  readonly record: WireRecord | null;
  readonly loading: boolean;
  readonly error: Error | null;
}

export function sameRow(a: WireRecord | null, b: WireRecord | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (!Object.is(a[k], b[k]) || !(k in b)) return false;
  return true;
}

export function sameRows(a: readonly WireRecord[], b: readonly WireRecord[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameRow(a[i]!, b[i]!)) return false;
  return true;
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** The ids of a large event as a set, built once however many record stores look at the event. */
const idSets = new WeakMap<ChangeEvent, ReadonlySet<string>>();
function touches(event: ChangeEvent, id: string): boolean {
  const ids = event.ids;
  if (ids === null) return true;
  if (ids.length < 16) return ids.includes(id);
  let set = idSets.get(event);
  if (!set) idSets.set(event, (set = new Set(ids)));
  return set.has(id);
}

/**
 * A value read from the local database, kept fresh while someone listens. `read` runs when the
 * first listener subscribes and after every event `relevant` accepts; `merge` turns a read's
 * result into the next snapshot, returning the previous one when nothing changed.
 */
abstract class LiveStore<T, S> {
  private readonly listeners = new Set<() => void>();
  private unsubscribe: (() => void) | null = null;
  private reading = false;
  private again = false;
  private scheduled = false;
  /** Bumped whenever the last listener leaves: a read started before belongs to no one. */
  private generation = 0;

  protected constructor(
    protected readonly local: LocalDatabase,
    protected snapshot: S,
  ) {}

  protected abstract relevant(event: ChangeEvent): boolean;
  protected abstract read(): Promise<T>;
  protected abstract merge(previous: S, value: T): S;
  protected abstract failed(previous: S, error: Error): S;

  readonly getSnapshot = (): S => this.snapshot;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    if (this.unsubscribe === null) {
      this.unsubscribe = this.local.onChange((e) => {
        if (this.relevant(e)) this.schedule();
      });
      // Nothing was heard while no one listened: read afresh.
      this.schedule();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size > 0 || this.unsubscribe === null) return;
      this.unsubscribe();
      this.unsubscribe = null;
      this.generation++;
      this.reading = false;
      this.again = false;
    };
  };

  /** Events of one write (a pulled page tells each table in a row) make one read, in a microtask. */
  private schedule(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    void Promise.resolve().then(() => {
      this.scheduled = false;
      if (this.unsubscribe !== null) void this.refresh();
    });
  }

  private async refresh(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return;
    }
    const generation = this.generation;
    this.reading = true;
    do {
      this.again = false;
      let next: S;
      try {
        next = this.merge(this.snapshot, await this.read());
      } catch (e) {
        next = this.failed(this.snapshot, asError(e));
      }
      if (generation !== this.generation) return;
      if (next !== this.snapshot) {
        this.snapshot = next;
        for (const l of [...this.listeners]) l();
      }
    } while (this.again);
    this.reading = false;
  }
}

export class QueryStore extends LiveStore<WireRecord[], QueryResult> {
  constructor(
    local: LocalDatabase,
    private readonly table: string,
    private readonly options: Parameters<LocalDatabase['query']>[1],
  ) {
    super(local, { records: [], loading: true, error: null });
  }

  // Any change to the table: a row may have come into the query's filter or gone out of it.
  protected relevant(e: ChangeEvent): boolean {
    return e.table === this.table;
  }

  protected read(): Promise<WireRecord[]> {
    return this.local.query(this.table, this.options);
  }

  protected merge(previous: QueryResult, records: WireRecord[]): QueryResult {
    if (!previous.loading && previous.error === null && sameRows(previous.records, records)) return previous;
    return { records: sameRows(previous.records, records) ? previous.records : records, loading: false, error: null };
  }

  protected failed(previous: QueryResult, error: Error): QueryResult {
    return { records: previous.records, loading: false, error };
  }
}

export class RecordStore extends LiveStore<WireRecord | null, RecordResult> {
  constructor(
    local: LocalDatabase,
    private readonly table: string,
    private readonly id: string,
  ) {
    super(local, { record: null, loading: true, error: null });
  }

  protected relevant(e: ChangeEvent): boolean {
    return e.table === this.table && touches(e, this.id);
  }

  protected read(): Promise<WireRecord | null> {
    return this.local.get(this.table, this.id);
  }

  protected merge(previous: RecordResult, record: WireRecord | null): RecordResult {
    if (!previous.loading && previous.error === null && sameRow(previous.record, record)) return previous;
    return { record: sameRow(previous.record, record) ? previous.record : record, loading: false, error: null };
  }

  protected failed(previous: RecordResult, error: Error): RecordResult {
    return { record: previous.record, loading: false, error };
  }
}
