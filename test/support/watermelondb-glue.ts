/**
 * The glue between WatermelonDB's stock `synchronize()` and this server: `pullChanges` and
 * `pushChanges` over `fetch`. docs/watermelondb.md shows this file; an app copies it as is.
 */
import { Q, type Database } from '@nozbe/watermelondb';
import { synchronize, type SyncDatabaseChangeSet, type SyncLog, type SyncPullArgs, type SyncPullResult, type SyncPushArgs } from '@nozbe/watermelondb/sync';

/** WatermelonDB's change set, spelled out: its own type is keyed by the generic `TableName<any>`, which TypeScript does not accept as an index signature. */
type WireRecord = Record<string, string | number | boolean | null>;
type TableChanges = { created: WireRecord[]; updated: WireRecord[]; deleted: string[] };
type ChangeSet = Record<string, TableChanges>;

export interface SyncGlueOptions {
  /** e.g. https://sync.example.com */
  readonly baseUrl: string;
  /** The current access token; called before every request, so a refreshed token is picked up. */
  readonly getToken: () => string | Promise<string>;
  /** This installation's stable id (see `deviceIdOf`): the server does not send a device its own pushes back. */
  readonly deviceId: string;
  /** The schema version sent on push (pull sends the one synchronize() passes); use `database.schema.version`. */
  readonly schemaVersion: number;
  /**
   * The synced tables of this app version's schema. Pulls then ask for these only, so a table the
   * server gains later never reaches an app that lacks it (synchronize() fails on an unknown table).
   * Without it, pulls ask for every table the server has.
   */
  readonly tables?: readonly string[];
  /**
   * A fresh random id (a UUID) for each push. Pass one in React Native: Hermes has no `crypto`
   * global (e.g. uuid's v4 after `import 'react-native-get-random-values'`). Without it, the
   * engine's `crypto.randomUUID()`; where there is none, the glue throws a SyncSetupError.
   */
  readonly newPushId?: () => string;
  /**
   * Gives up on a request whose answer has not fully arrived after this long (default 30,000 ms):
   * a request that hangs would hold synchronize() forever, and every later call would fail with
   * "Concurrent synchronization is not allowed". Needs AbortController (React Native has it).
   */
  readonly timeoutMs?: number;
  /** At most this many records per push request (the server's SYNC_MAX_PUSH_RECORDS, default 1000). */
  readonly maxPushRecords?: number;
  /** Waits before each retry of a push whose answer was lost or was a 5xx (same push_id); default [1000, 3000]. */
  readonly pushRetryDelaysMs?: readonly number[];
  /** Injected for tests or certificate pinning; defaults to the global fetch. */
  readonly fetch?: typeof fetch;
  /**
   * The ids of `table`'s records with no local changes (syncWithServer reads them from the
   * database). Used when the server has purged deletes newer than lastPulledAt (410
   * CURSOR_EXPIRED): the glue then pulls everything, and these records, if the server no longer
   * sent them, were deleted there.
   */
  readonly syncedIds?: (table: string) => Promise<readonly string[]>;
}

/** A failed request; `retryable` tells whether calling synchronize() again later can help. */
export class SyncHttpError extends Error {
  constructor(
    readonly status: number | null,
    readonly code: string | null,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'SyncHttpError';
  }
}

/** The glue is wired wrong (no source of random ids): retrying cannot help, fix the call. */
export class SyncSetupError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'SyncSetupError';
  }
}

/** The engine's crypto.randomUUID, looked up when needed (Hermes has no `crypto` global). */
function engineUuid(): () => string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (typeof crypto?.randomUUID !== 'function') {
    throw new SyncSetupError(
      'No source of random ids: this JavaScript engine has no crypto.randomUUID (Hermes has no crypto global). Pass newPushId (e.g. uuid\'s v4), and deviceId or an id function to deviceIdOf.',
    );
  }
  return () => crypto.randomUUID!();
}

interface PullPage {
  changes: ChangeSet;
  timestamp: number;
  has_more: boolean;
}

const DEVICE_ID_KEY = 'sync_device_id';

/**
 * The id this database syncs under: created once with `newId` (the engine's crypto.randomUUID by
 * default) and kept in WatermelonDB's LocalStorage.
 */
export async function deviceIdOf(database: Database, newId?: () => string): Promise<string> {
  const known = await database.localStorage.get<string>(DEVICE_ID_KEY);
  if (typeof known === 'string' && known !== '') return known;
  const id = (newId ?? engineUuid())();
  await database.localStorage.set(DEVICE_ID_KEY, id);
  return id;
}

export function serverGlue(options: SyncGlueOptions): {
  pullChanges: (args: SyncPullArgs) => Promise<SyncPullResult>;
  pushChanges: (args: SyncPushArgs) => Promise<void>;
} {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const doFetch: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const newPushId = options.newPushId ?? engineUuid();
  const timeoutMs = options.timeoutMs ?? 30_000;
  const retryDelays = options.pushRetryDelaysMs ?? [1000, 3000];
  const maxPushRecords = options.maxPushRecords ?? 1000;

  async function request(path: string, init: RequestInit, withDeviceId: boolean): Promise<any> {
    const headers: Record<string, string> = {
      ...(init.headers as Record<string, string> | undefined),
      authorization: `Bearer ${await options.getToken()}`,
      ...(withDeviceId ? { 'x-device-id': options.deviceId } : {}),
    };
    let res: Response;
    let text: string;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      res = await doFetch(`${baseUrl}${path}`, { ...init, headers, signal: abort.signal });
      text = await res.text();
    } catch (e) {
      if (abort.signal.aborted) throw new SyncHttpError(null, 'TIMEOUT', `${path.split('?')[0]}: no answer within ${timeoutMs} ms`, true);
      throw new SyncHttpError(null, null, `network error: ${e instanceof Error ? e.message : String(e)}`, true);
    } finally {
      clearTimeout(timer);
    }
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const code = typeof body?.error?.code === 'string' ? body.error.code : null;
      const message = typeof body?.error?.message === 'string' ? body.error.message : text.slice(0, 200);
      throw new SyncHttpError(res.status, code, `${path.split('?')[0]} answered ${res.status} ${code ?? ''}: ${message}`, res.status >= 500 || res.status === 429);
    }
    if (body === undefined) throw new SyncHttpError(res.status, null, `${path.split('?')[0]} answered ${res.status} with a body that is not JSON`, true);
    return body;
  }

  async function pullChanges(args: SyncPullArgs): Promise<SyncPullResult> {
    try {
      return await pullPages(args);
    } catch (e) {
      const firstSync = args.lastPulledAt === null || args.lastPulledAt === undefined;
      if (!(e instanceof SyncHttpError && e.code === 'CURSOR_EXPIRED') || firstSync || !options.syncedIds) throw e;
    }
    // The server no longer keeps every delete since lastPulledAt: pull everything (as a first
    // sync) and delete the unchanged records it did not send. Records with local changes stay,
    // and synchronize() pushes them next, against the new cursor.
    const full = await pullPages({ ...args, lastPulledAt: undefined });
    for (const [table, c] of Object.entries(full.changes)) {
      const sent = new Set([...c.created, ...c.updated].map((r) => r['id'] as string));
      c.deleted = (await options.syncedIds(table)).filter((id) => !sent.has(id));
    }
    return { changes: full.changes as SyncDatabaseChangeSet, timestamp: full.timestamp };
  }

  async function pullPages({ lastPulledAt, schemaVersion, migration }: SyncPullArgs): Promise<{ changes: ChangeSet; timestamp: number }> {
    // A first sync (lastPulledAt null) goes without X-Device-Id on every page: the server cannot
    // tell its continuation pages from an incremental pull, and would leave this device's own rows out.
    const firstSync = lastPulledAt === null || lastPulledAt === undefined;
    const accumulated = new Accumulator();
    let cursor: number | null = firstSync ? null : lastPulledAt;
    let first = true;
    for (;;) {
      const query = new URLSearchParams({ last_pulled_at: cursor === null ? 'null' : String(cursor), schema_version: String(schemaVersion) });
      // Only the first page carries `migration`; the next ones resume after the cursor as usual.
      if (first && migration) query.set('migration', JSON.stringify(migration));
      if (options.tables) query.set('tables', options.tables.join(','));
      const page = (await request(`/api/sync/pull?${query}`, { method: 'GET' }, !firstSync)) as PullPage;
      if (typeof page?.timestamp !== 'number' || typeof page.changes !== 'object' || page.changes === null) {
        throw new SyncHttpError(200, null, 'pull answered with an unexpected shape', true);
      }
      if (page.has_more && !first && cursor !== null && page.timestamp <= cursor) {
        throw new SyncHttpError(200, null, `pull did not move its cursor past ${cursor}`, true);
      }
      accumulated.add(page.changes);
      cursor = page.timestamp;
      first = false;
      if (!page.has_more) return { changes: accumulated.changeSet(), timestamp: page.timestamp };
    }
  }

  async function pushChanges({ changes, lastPulledAt }: SyncPushArgs): Promise<void> {
    // synchronize() marks its changes as synced only once this returns. If a later batch fails,
    // the earlier ones are simply pushed again by the next sync (after its pull: no conflict).
    for (const batch of batches(changes as ChangeSet, maxPushRecords)) {
      const body = JSON.stringify({ last_pulled_at: lastPulledAt, push_id: newPushId(), changes: batch });
      const init: RequestInit = { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-schema-version': String(options.schemaVersion) } };
      for (let attempt = 0; ; attempt++) {
        try {
          await request('/api/sync/push', init, true);
          break;
        } catch (e) {
          // The same body under the same push_id: if the lost try did reach the server, it
          // answers as it did then and writes nothing twice.
          // A 429 is not retried here: it asks for a wait longer than this sync should block.
          if (!(e instanceof SyncHttpError) || !(e.status === null || e.status >= 500) || attempt >= retryDelays.length) throw e;
          await new Promise((resolve) => setTimeout(resolve, retryDelays[attempt]));
        }
      }
    }
  }

  return { pullChanges, pushChanges };
}

export type SyncWithServerOptions = Omit<SyncGlueOptions, 'deviceId' | 'schemaVersion'> & {
  /** This installation's id if the app keeps it; by default deviceIdOf(database, newPushId). */
  deviceId?: string;
  migrationsEnabledAtVersion?: number;
  log?: SyncLog;
};

/** One sync: pull (every page), apply, push. Throws when it failed; call it again later. */
export async function syncWithServer(database: Database, options: SyncWithServerOptions): Promise<void> {
  const { migrationsEnabledAtVersion, log, deviceId, ...rest } = options;
  const glue = serverGlue({
    syncedIds: (table) => database.get(table).query(Q.where('_status', 'synced')).fetchIds(),
    ...rest,
    deviceId: deviceId ?? (await deviceIdOf(database, rest.newPushId)),
    schemaVersion: database.schema.version,
  });
  await synchronize({
    database,
    ...glue,
    ...(migrationsEnabledAtVersion !== undefined ? { migrationsEnabledAtVersion } : {}),
    ...(log ? { log } : {}),
  });
}

/**
 * Pages of one pull, merged into the single change set synchronize() takes. Pages come in stamp
 * order, so a row on two pages changed in between and the later page has its newer version: the
 * later values win. A row keeps the bucket (created or updated) of the first page that had it,
 * which was judged against what this device had before the sync; a delete on a later page removes it.
 */
class Accumulator {
  private readonly tables = new Map<string, { created: Map<string, WireRecord>; updated: Map<string, WireRecord>; deleted: Set<string> }>();

  add(changes: ChangeSet): void {
    for (const [name, c] of Object.entries(changes)) {
      let t = this.tables.get(name);
      if (!t) this.tables.set(name, (t = { created: new Map(), updated: new Map(), deleted: new Set() }));
      for (const [bucket, records] of [['created', c.created ?? []], ['updated', c.updated ?? []]] as const) {
        for (const record of records) {
          const id = record['id'] as string;
          t.deleted.delete(id);
          if (t.created.has(id)) t.created.set(id, record);
          else if (t.updated.has(id)) t.updated.set(id, record);
          else t[bucket].set(id, record);
        }
      }
      for (const id of c.deleted ?? []) {
        t.created.delete(id);
        t.updated.delete(id);
        t.deleted.add(id);
      }
    }
  }

  changeSet(): ChangeSet {
    const out: ChangeSet = {};
    for (const [name, t] of this.tables) out[name] = { created: [...t.created.values()], updated: [...t.updated.values()], deleted: [...t.deleted] };
    return out;
  }
}

/** Splits a change set into pushes of at most `max` records, leaving out tables with nothing to push. */
function batches(changes: ChangeSet, max: number): ChangeSet[] {
  const out: ChangeSet[] = [];
  let current: ChangeSet = {};
  let size = 0;
  const add = (table: string, kind: keyof TableChanges, item: WireRecord | string) => {
    if (size === max) {
      out.push(current);
      current = {};
      size = 0;
    }
    const t = (current[table] ??= { created: [], updated: [], deleted: [] });
    (t[kind] as Array<WireRecord | string>).push(item);
    size++;
  };
  for (const [table, c] of Object.entries(changes)) {
    for (const r of c.created) add(table, 'created', r);
    for (const r of c.updated) add(table, 'updated', r);
    for (const id of c.deleted) add(table, 'deleted', id);
  }
  if (size > 0) out.push(current);
  return out;
}
