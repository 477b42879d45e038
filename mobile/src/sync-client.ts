/**
 * `createSyncClient(...)`: the mobile composition root. It opens (and migrates) the local
 * database, wires the engine to its ports, and runs syncs one at a time on the triggers of spec
 * §5: app launch, local writes (debounced), a 15-minute poll and network regained, retrying
 * retryable failures with Fibonacci delays.
 */
import { err, type Result } from 'neverthrow';
import { MAX_RETRY_DELAY_MS, networkFailure, retryDelayMs, type SyncFailure } from '../../src/domain';
import { FetchSyncTransport, type FetchTransportOptions } from './adapters/fetch-transport';
import { SseLiveTransport } from './adapters/sse-live-transport';
import { LiveChannel } from './live-channel';
import { hasSecureRandom, NoSecureRandomSourceError, uuidV4, type RandomBytes } from './ids';
import { LocalDatabase, type ConflictEvent, type QuarantinedRecord } from './local-database';
import { checkpointsAdopted, claimLocalDatabase, LOCAL_SCHEMA, migrateLocalDatabase, type LocalSchema } from './local-schema';
import { databaseKeyName, pendingDatabaseKeyName } from './database-key';
import { bindCheckpoints, forgetCheckpoints, installMarkerName } from './device-identity';
import { guardToken, WrongUserError } from './identity';
import { systemTimers, type AppStateMonitor, type CheckpointStore, type EventSourceFactory, type KeyStore, type LiveTransport, type MetricsSink, type NetworkMonitor, type SqlDriver, type SyncMetrics, type SyncTransport, type Timers } from './ports';
import { SyncEngine, type SyncOptions, type SyncReport } from './sync-engine';

/**
 * `unauthenticated`: the server refused the token twice (the second time just after
 * `getToken({ forceRefresh: true })`): the client's own triggers wait until the app calls
 * `sync()` again with a token it can get (docs/mobile.md, "Token refresh").
 */
export type SyncState = 'idle' | 'syncing' | 'offline' | 'error' | 'unauthenticated';

export interface SyncStatus {
  readonly state: SyncState;
  /** Local changes not yet on the server (quarantined records not counted). */
  readonly pending: number;
  readonly quarantined: number;
  readonly lastSyncedAt: number | null;
  readonly lastError: SyncFailure | null;
  /** Conflicts resolved by the latest sync (its events went to `onConflict` listeners). */
  readonly conflicts: number;
  /** What the latest sync did: duration, records and bytes each way, result, retries. */
  readonly lastSync: SyncMetrics | null;
  /** The live channel is open: another device's change arrives within a second (docs/mobile.md). */
  readonly live: boolean;
}

/**
 * Wraps a token getter so that every token it returns is checked against the client's user (it
 * throws WrongUserError otherwise, which the HTTP transport reports as a `WRONG_USER` failure
 * before sending anything). A custom transport's getter goes through it.
 */
export type TokenGuard = <A extends unknown[]>(getToken: (...args: A) => string | Promise<string>) => (...args: A) => Promise<string>;

export interface SyncClientOptions {
  /**
   * The signed-in user this client is for: the `sub` of their access token. Their checkpoints,
   * device id and push attempts are kept apart from every other user's (`checkpoints` scoped by
   * it), the database is claimed for them (a database of another user is refused with
   * WrongUserError), and no request goes out with a token whose `sub` is not theirs (the sync
   * fails with code `WRONG_USER`, not retried). Without it, the client keeps the checkpoints of
   * before accounts (single-user apps), and checks tokens only if the database was claimed.
   */
  readonly userId?: string;
  /** This user's local database (its own file: see docs/mobile.md, "Sign-in and sign-out"). */
  readonly db: SqlDriver;
  readonly checkpoints: CheckpointStore;
  readonly network: NetworkMonitor;
  /**
   * The platform's key store (KeychainKeyStore): it keeps a marker that this install runs this
   * database, so a database and checkpoints restored from a backup onto another phone sync as a
   * new device (docs/mobile.md); and `signOut({ wipe: true })` deletes the database key from it.
   */
  readonly keyStore?: KeyStore;
  /** Deletes this user's database file (the client has closed it by then); needed by `signOut({ wipe: true })`. */
  readonly deleteDatabase?: () => Promise<void>;
  /** The server over HTTP; or pass `transport` directly (tests, custom stacks). */
  readonly server?: Omit<FetchTransportOptions, 'deviceId'>;
  /** `guard` checks its tokens against `userId`: wrap the transport's `getToken` with it. */
  readonly transport?: (deviceId: string, guard: TokenGuard) => SyncTransport;
  readonly timers?: Timers;
  /** Ids for new records and the device; the default is a random (version 4) UUID from `randomBytes`. */
  readonly newId?: () => string;
  /**
   * Cryptographically random bytes, for the default ids and for push ids (always UUIDs); the
   * default is `globalThis.crypto.getRandomValues` (react-native-get-random-values on Hermes).
   */
  readonly randomBytes?: RandomBytes;
  readonly batchSize?: number;
  readonly pullLimit?: number;
  readonly debounceMs?: number;
  readonly pollIntervalMs?: number;
  readonly retryCapMs?: number;
  /** Receives each sync's measurements (also kept in `status.lastSync`). */
  readonly metrics?: MetricsSink;
  /** Live sync: the server pokes, the client syncs (docs/mobile.md, "Live sync"). Off when absent. */
  readonly live?: LiveOptions;
  /**
   * The local schema: the tables and columns this app stores and the steps that upgrade an older
   * database (docs/mobile.md, "Upgrading the local schema"). The package's own when absent.
   */
  readonly localSchema?: LocalSchema;
}

export interface LiveOptions {
  /** An EventSource maker (React Native: react-native-sse's); the channel then uses `server`'s URL and token. */
  readonly eventSource?: EventSourceFactory;
  /** Or the transport itself (tests, custom stacks). */
  readonly transport?: (deviceId: string) => LiveTransport;
  /** Foreground or background (React Native: RnAppStateMonitor over AppState); always foreground when absent. */
  readonly appState?: AppStateMonitor;
  readonly pokeDelayMs?: number;
  readonly reconnectCapMs?: number;
  readonly random?: () => number;
}

/** What `signOut({ wipe: true })` removes, besides the checkpoints: given by createSyncClient. */
interface Account {
  readonly userId: string | undefined;
  readonly instanceId: string;
  readonly keyStore: KeyStore | undefined;
  readonly deleteDatabase: (() => Promise<void>) | undefined;
}

export class SyncClient {
  private status: SyncStatus = { state: 'idle', pending: 0, quarantined: 0, lastSyncedAt: null, lastError: null, conflicts: 0, lastSync: null, live: false };
  private traffic = { bytesSent: 0, bytesReceived: 0 };
  private readonly listeners = new Set<(s: SyncStatus) => void>();
  private readonly conflictListeners = new Set<(events: readonly ConflictEvent[]) => void>();
  private readonly unauthenticatedListeners = new Set<(failure: SyncFailure) => void>();
  /** The token was refused after a refresh: triggers (poll, writes, network, retries, live) hold off. */
  private halted = false;
  /** The queued run was asked for by the app (it runs even when halted), not only by a trigger. */
  private queuedExplicit = false;
  private running: Promise<Result<SyncReport, SyncFailure>> | null = null;
  private queued: Promise<Result<SyncReport, SyncFailure>> | null = null;
  private started = false;
  private attempt = 0;
  private retryTimer: unknown = null;
  private debounceTimer: unknown = null;
  private pollTimer: unknown = null;
  private readonly unsubscribers: Array<() => void> = [];
  /** Set by createSyncClient when live sync is configured. */
  liveChannel: LiveChannel | null = null;

  constructor(
    readonly local: LocalDatabase,
    private readonly engine: SyncEngine,
    private readonly db: SqlDriver,
    private readonly checkpoints: CheckpointStore,
    private readonly network: NetworkMonitor,
    private readonly timers: Timers,
    readonly deviceId: string,
    private readonly settings: { debounceMs: number; pollIntervalMs: number; retryCapMs: number },
    private readonly metricsSink?: MetricsSink,
    private readonly account: Account = { userId: undefined, instanceId: '', keyStore: undefined, deleteDatabase: undefined },
  ) {
    // The pending count follows the app's writes whether or not the triggers run (a status bar shows it).
    local.onChange((change) => {
      if (change.source === 'local') void this.recount();
    });
  }

  getStatus(): SyncStatus {
    return this.status;
  }

  subscribe(listener: (s: SyncStatus) => void): () => void {
    this.listeners.add(listener);
    listener(this.status);
    return () => this.listeners.delete(listener);
  }

  /**
   * Hears every conflict as a sync resolves it: a pulled change merged into a local edit, or a
   * push the server merged. Each event says which columns each side won.
   */
  onConflict(listener: (events: readonly ConflictEvent[]) => void): () => void {
    this.conflictListeners.add(listener);
    return () => this.conflictListeners.delete(listener);
  }

  /**
   * Hears the client become `unauthenticated` (once each time): the server refused the token,
   * and the refreshed one too. Sign the user in again (or refresh the session), then call `sync()`.
   */
  onUnauthenticated(listener: (failure: SyncFailure) => void): () => void {
    this.unauthenticatedListeners.add(listener);
    return () => this.unauthenticatedListeners.delete(listener);
  }

  /** Called after a refused token (a sync's, or the live channel's): hold every trigger until the app syncs. */
  unauthenticated(failure: SyncFailure): void {
    const first = !this.halted;
    this.halted = true;
    this.cancel('retryTimer');
    this.cancel('debounceTimer');
    this.attempt = 0;
    this.liveChannel?.halt();
    this.setStatus({ state: 'unauthenticated', lastError: failure });
    if (!first) return;
    for (const l of [...this.unauthenticatedListeners]) {
      try {
        l(failure);
      } catch {
        // A listener's bug must not break the client's state.
      }
    }
  }

  /** Called by the transport (wired in createSyncClient) after each exchange. */
  countTraffic(t: { bytesSent: number; bytesReceived: number }): void {
    this.traffic.bytesSent += t.bytesSent;
    this.traffic.bytesReceived += t.bytesReceived;
  }

  /** Called by the engine (wired in createSyncClient). */
  conflictsResolved(events: readonly ConflictEvent[]): void {
    this.setStatus({ conflicts: this.status.conflicts + events.length });
    for (const l of [...this.conflictListeners]) l(events);
  }

  private setStatus(patch: Partial<SyncStatus>): void {
    this.status = { ...this.status, ...patch };
    for (const l of [...this.listeners]) l(this.status);
  }

  /** Recounts pending and quarantined records (done after every sync and local write). */
  async refreshCounts(): Promise<void> {
    const [pending, quarantined] = await Promise.all([this.local.countPending(), this.local.listQuarantined().then((q) => q.length)]);
    this.setStatus({ pending, quarantined });
  }

  /** refreshCounts for the client's own triggers: a database closed meanwhile leaves the counts as they were. */
  private recount(): Promise<void> {
    return this.refreshCounts().catch(() => undefined);
  }

  /**
   * Syncs now, or right after the sync under way (a call during a sync queues one more run, and
   * every call made meanwhile shares it).
   */
  sync(options: SyncOptions = {}): Promise<Result<SyncReport, SyncFailure>> {
    return this.request(options, true);
  }

  /** A sync the client itself decided on (poll, local write, network back, retry, live poke): none while unauthenticated. */
  private trigger(): void {
    if (!this.halted) void this.request({}, false);
  }

  private request(options: SyncOptions, explicit: boolean): Promise<Result<SyncReport, SyncFailure>> {
    this.engine.tablesFor(options); // unknown table: fail at the call, not later
    if (this.queued) {
      if (explicit) this.queuedExplicit = true;
      return this.queued;
    }
    if (!this.running) return this.launch(options);
    this.queuedExplicit = explicit;
    this.queued = this.running.then(() => {
      this.queued = null;
      // The run before was refused: a trigger's run would only be refused again.
      if (this.halted && !this.queuedExplicit) return err<SyncReport, SyncFailure>(this.status.lastError ?? { kind: 'AUTH_ERROR', retryable: false, message: 'unauthenticated' });
      return this.launch(options);
    });
    return this.queued;
  }

  private launch(options: SyncOptions): Promise<Result<SyncReport, SyncFailure>> {
    const run = this.runOnce(options).finally(() => {
      this.running = null;
    });
    this.running = run;
    return run;
  }

  private async runOnce(options: SyncOptions): Promise<Result<SyncReport, SyncFailure>> {
    const startedAt = this.timers.now();
    const retries = this.attempt;
    const progress: SyncReport = { tables: {}, conflicts: [] };
    if (!this.network.isOnline()) {
      this.setStatus({ state: 'offline' });
      await this.recount();
      const offline = networkFailure('offline');
      this.measure(startedAt, retries, progress, err(offline));
      return err(offline);
    }
    this.traffic = { bytesSent: 0, bytesReceived: 0 };
    this.setStatus({ state: 'syncing', conflicts: 0 });
    const result = await this.engine.run(options, progress).catch((e: unknown) =>
      err<SyncReport, SyncFailure>({ kind: 'SERVER_ERROR', retryable: true, message: `local failure: ${e instanceof Error ? e.message : String(e)}` }),
    );
    this.measure(startedAt, retries, progress, result);
    if (result.isOk()) {
      this.attempt = 0;
      this.cancel('retryTimer');
      this.setStatus({ state: 'idle', lastSyncedAt: this.timers.now(), lastError: null });
      if (this.halted) {
        this.halted = false;
        this.liveChannel?.resume();
      }
    } else if (result.error.kind === 'AUTH_ERROR') {
      this.unauthenticated(result.error);
    } else {
      const offline = result.error.kind === 'NETWORK_ERROR' && !this.network.isOnline();
      this.setStatus({ state: offline ? 'offline' : 'error', lastError: result.error });
      if (result.error.retryable && !offline) this.scheduleRetry(result.error);
    }
    await this.recount();
    return result;
  }

  private measure(startedAt: number, retries: number, progress: SyncReport, result: Result<SyncReport, SyncFailure>): void {
    const tables = Object.values(progress.tables);
    const metrics: SyncMetrics = {
      startedAt,
      durationMs: this.timers.now() - startedAt,
      recordsPulled: tables.reduce((n, t) => n + t.pulled, 0),
      recordsPushed: tables.reduce((n, t) => n + t.pushed, 0),
      bytesSent: this.traffic.bytesSent,
      bytesReceived: this.traffic.bytesReceived,
      conflicts: progress.conflicts.length,
      result: result.isOk() ? 'ok' : result.error.kind,
      retries,
    };
    this.setStatus({ lastSync: metrics });
    try {
      this.metricsSink?.record(metrics);
    } catch {
      // A sink that throws breaks its own contract; it must not break the sync.
    }
  }

  private scheduleRetry(failure: SyncFailure): void {
    if (!this.started) return;
    this.attempt += 1;
    const asked = failure.retryAfterSeconds !== undefined ? failure.retryAfterSeconds * 1000 : 0;
    const delay = Math.min(Math.max(retryDelayMs(this.attempt, this.settings.retryCapMs), asked), MAX_RETRY_DELAY_MS);
    this.cancel('retryTimer');
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.trigger();
    }, delay);
  }

  private cancel(timer: 'retryTimer' | 'debounceTimer' | 'pollTimer'): void {
    if (this[timer] !== null) this.timers.clearTimeout(this[timer]);
    this[timer] = null;
  }

  /** Starts the triggers: a sync now, after local writes, every poll interval, and when the network returns. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.unsubscribers.push(
      // Only the app's own writes: what a sync wrote needs no sync, and its counts are recounted after it.
      this.local.onChange((change) => {
        if (change.source !== 'local') return;
        this.cancel('debounceTimer');
        this.debounceTimer = this.timers.setTimeout(() => {
          this.debounceTimer = null;
          this.trigger();
        }, this.settings.debounceMs);
      }),
      this.network.subscribe((online) => {
        // Unauthenticated stays the state to show: going offline or back changes nothing for it.
        if (this.halted) return;
        if (!online) return this.setStatus({ state: 'offline' });
        this.attempt = 0;
        this.cancel('retryTimer');
        this.trigger();
      }),
    );
    const poll = () => {
      this.pollTimer = this.timers.setTimeout(() => {
        this.trigger();
        poll();
      }, this.settings.pollIntervalMs);
    };
    poll();
    void this.sync();
    this.liveChannel?.start();
  }

  /** Called by the live channel on a poke. */
  liveTrigger(): void {
    this.trigger();
  }

  /** Called by the live channel. */
  liveChanged(live: boolean): void {
    if (live !== this.status.live) this.setStatus({ live });
  }

  /** The lowest pull cursor over the synced tables: the mark this device has everything up to (null: some table never pulled). */
  async knownMark(): Promise<number | null> {
    let low: number | null = Infinity;
    for (const table of this.engine.tablesFor({})) {
      const at = await this.checkpoints.getLastPulledAt(table.name);
      if (at === null) return null;
      low = Math.min(low, at);
    }
    return low;
  }

  /** Stops every trigger and retry; a sync under way finishes. */
  stop(): void {
    this.started = false;
    this.liveChannel?.stop();
    for (const u of this.unsubscribers.splice(0)) u();
    this.cancel('retryTimer');
    this.cancel('debounceTimer');
    this.cancel('pollTimer');
  }

  listQuarantined(): Promise<QuarantinedRecord[]> {
    return this.local.listQuarantined();
  }

  /** Pushes a quarantined record again on the next sync. */
  async retryQuarantined(table: string, id: string): Promise<void> {
    await this.local.releaseQuarantined(table, id);
    await this.refreshCounts();
  }

  /** Drops a quarantined record's local changes (the server's version comes back on the next sync). */
  async discardQuarantined(table: string, id: string): Promise<void> {
    if (await this.local.discardQuarantined(table, id)) await this.checkpoints.setLastPulledAt(table, null);
    await this.refreshCounts();
  }

  /** The user this client is for (undefined: created without one). */
  get userId(): string | undefined {
    return this.account.userId;
  }

  /**
   * Signs the user out of sync: stops every trigger, waits for a sync under way and closes the
   * database. Kept (the default), everything stays for the user's return: their database with
   * its pending changes, checkpoints, device id and key; a client created for them again syncs on
   * from there. `wipe: true` then deletes it all: the file (through `deleteDatabase`), their
   * checkpoints, push attempts and device id, and their database key and install marker in the
   * key store. A wipe that cannot be done whole is refused before anything is closed or deleted.
   */
  async signOut(options: { readonly wipe?: boolean } = {}): Promise<void> {
    const { keyStore, deleteDatabase, userId, instanceId } = this.account;
    if (options.wipe) {
      if (!deleteDatabase) throw new Error('signOut({ wipe: true }) needs the `deleteDatabase` option of createSyncClient: the client does not know where the database file is.');
      if (keyStore && !keyStore.remove) throw new Error('signOut({ wipe: true }) needs a key store that can remove entries (KeyStore.remove).');
    }
    await this.close();
    if (!options.wipe || !deleteDatabase) return;
    // The file first: if its deletion fails, the key that opens it is still there.
    await deleteDatabase();
    await forgetCheckpoints(this.checkpoints);
    if (keyStore?.remove) {
      await keyStore.remove(databaseKeyName(userId));
      await keyStore.remove(pendingDatabaseKeyName(databaseKeyName(userId)));
      await keyStore.remove(installMarkerName(instanceId));
    }
  }

  /** Stops the triggers, waits for a sync under way and closes the local database. */
  async close(): Promise<void> {
    this.stop();
    await this.queued?.catch(() => undefined);
    await this.running?.catch(() => undefined);
    await this.db.close();
  }
}

export async function createSyncClient(options: SyncClientOptions): Promise<SyncClient> {
  const timers = options.timers ?? systemTimers;
  // Checked before anything is opened: a missing source would otherwise surface at the first write.
  if (!options.randomBytes && !hasSecureRandom()) throw new NoSecureRandomSourceError();
  const randomBytes = options.randomBytes;
  const uuid = () => uuidV4(randomBytes);
  const newId = options.newId ?? uuid;
  const userId = options.userId;
  if (userId !== undefined && (typeof userId !== 'string' || userId.length === 0)) throw new TypeError('createSyncClient: `userId` must be a non-empty string (the `sub` of the user\'s token).');
  const schema = options.localSchema ?? LOCAL_SCHEMA;
  // Columns a step added are owed a pull, kept in the database itself: the engine asks for them.
  const migrated = await migrateLocalDatabase(options.db, schema, uuid);
  if (userId !== undefined) {
    if (migrated.userId !== null && migrated.userId !== userId) {
      throw new WrongUserError(`This local database belongs to user ${JSON.stringify(migrated.userId)}, not ${JSON.stringify(userId)}: open each user's own database file.`);
    }
    if (migrated.userId === null) await claimLocalDatabase(options.db, userId);
  }
  // Each user's checkpoints apart; bound to this database and this install (docs/mobile.md).
  const checkpoints = userId === undefined ? options.checkpoints : options.checkpoints.scope(userId);
  const { deviceId } = await bindCheckpoints({ database: migrated, checkpoints, unscoped: userId === undefined ? null : options.checkpoints, keyStore: options.keyStore, newId });
  if (migrated.adoptCheckpoints) await checkpointsAdopted(options.db);
  // A database claimed by a user syncs only under that user's tokens, even through a client made without `userId`.
  const owner = userId ?? migrated.userId;
  const guard: TokenGuard = owner === null ? (get) => async (...args) => get(...args) : (get) => guardToken(get, owner);
  let client: SyncClient | undefined;
  const transport = options.transport
    ? options.transport(deviceId, guard)
    : options.server
      ? new FetchSyncTransport({
          ...options.server,
          getToken: guard(options.server.getToken),
          // The server checks it (SCHEMA_VERSION_MIN…MAX): what this device stores.
          schemaVersion: options.server.schemaVersion ?? schema.version,
          deviceId,
          onTraffic: (t) => {
            client?.countTraffic(t);
            options.server?.onTraffic?.(t);
          },
        })
      : undefined;
  if (!transport) throw new Error('createSyncClient needs `server` (base URL and getToken) or `transport`.');
  const local = new LocalDatabase(options.db, timers, newId, schema.tables);
  const engine = new SyncEngine(local, transport, checkpoints, uuid, {
    batchSize: options.batchSize ?? 100,
    ...(options.pullLimit !== undefined ? { pullLimit: options.pullLimit } : {}),
    onConflicts: (events) => client?.conflictsResolved(events),
    tables: schema.tables,
  });
  client = new SyncClient(local, engine, options.db, checkpoints, options.network, timers, deviceId, {
    debounceMs: options.debounceMs ?? 2000,
    pollIntervalMs: options.pollIntervalMs ?? 15 * 60 * 1000,
    retryCapMs: options.retryCapMs ?? MAX_RETRY_DELAY_MS,
  }, options.metrics, { userId, instanceId: migrated.instanceId, keyStore: options.keyStore, deleteDatabase: options.deleteDatabase });
  const live = options.live;
  const liveTransport = live?.transport
    ? live.transport(deviceId)
    : live?.eventSource && options.server
      ? new SseLiveTransport({ baseUrl: options.server.baseUrl, getToken: guard(options.server.getToken), deviceId, eventSource: live.eventSource })
      : undefined;
  if (live && !liveTransport) throw new Error('live sync needs `live.transport`, or `live.eventSource` with `server`.');
  if (liveTransport) {
    const c = client;
    client.liveChannel = new LiveChannel(liveTransport, live?.appState, options.network, timers, deviceId, {
      sync: () => c.liveTrigger(),
      knownMark: () => c.knownMark(),
      liveChanged: (on) => c.liveChanged(on),
      unauthenticated: (end) => c.unauthenticated({ kind: 'AUTH_ERROR', retryable: false, message: `the live channel was refused (HTTP ${end.status}) with a refreshed token` }),
    }, { pokeDelayMs: live?.pokeDelayMs ?? 50, reconnectCapMs: live?.reconnectCapMs ?? 60_000, random: live?.random ?? Math.random });
  }
  await client.refreshCounts();
  return client;
}
