/**
 * Model-based convergence runs (docs/testing.md). A seeded generator drives 2–4 users with 2–6
 * real mobile clients (OP-SQLite's Node build, one database file each) against one real server
 * over HTTP: local creates, updates and deletes on any table, syncs (one device or all at once),
 * network loss, injected faults (faults.ts), crash points with a reopen on the same file, server
 * restarts, reinstalls and clocks hours off. Then it heals every fault, syncs until quiet and
 * checks:
 * 1. every device of a user holds exactly the server's active rows of that user, value for value;
 * 2. every write the server acknowledged is there, unless a later acknowledged write to the same
 *    column, a delete, or the policy table (a server-owned column the server kept) overrode it,
 *    or a later push whose answer was lost (the server may have applied it) holds that value;
 * 3. no device ever held another user's row (checked on every pulled page, and at the end).
 * Every written value is unique and names its user and write (`u1w17`), so a failure names the
 * missing write. A push retried after a failure must reuse its push_id, across a crash too.
 */
import type { Knex } from 'knex';
import { open } from '@op-engineering/op-sqlite';
import { AsyncStorageCheckpointStore } from '../../../mobile/src/adapters/async-storage-checkpoints';
import { FetchSyncTransport } from '../../../mobile/src/adapters/fetch-transport';
import { OpSqliteDriver, type OpSqliteDatabase } from '../../../mobile/src/adapters/op-sqlite-driver';
import type { PushBody, SyncTransport, Timers } from '../../../mobile/src/ports';
import { createSyncClient, type SyncClient } from '../../../mobile/src/sync-client';
import { TABLES, columnNames, columnSpec, tableSpec, type TableSpec, type WireValue } from '../../../src/domain';
import { FakeNetworkMonitor } from '../../fakes/fake-network-monitor';
import { MemoryAsyncStorage } from '../../fakes/memory-async-storage';
import { newDeviceFile } from '../device';
import { startTestServer, storedRows } from '../server';
import { CRASH_POINTS, DeviceFaults, FETCH_FAULTS, crashingCheckpoints, crashingDriver, faultyFetch, newFaultCounts, type CrashPoint, type FaultCounts, type FetchFault } from './faults';
import { Rng } from './rng';

/** The server under test, as the runs need it: where it listens, and tokens for its users. */
export interface SimServer {
  readonly url: string;
  token(userId: string): string;
  close(): Promise<void>;
}

export interface RunOptions {
  readonly seed: number;
  /** Starts the server (again, after a restart) on the run's database; default: in this process. */
  readonly startServer?: () => Promise<SimServer>;
  /** Commands before healing (default: drawn from the seed, 20–50). */
  readonly commands?: number;
  /** Faults and crashes on (default true). */
  readonly faults?: boolean;
}

export interface RunResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly problems: string[];
  readonly commands: string[];
  readonly users: number;
  readonly devices: number;
  readonly writes: number;
  readonly acknowledged: number;
  readonly syncs: number;
  readonly faults: FaultCounts;
  readonly ms: number;
}

type Command =
  | { op: 'create'; d: number; table: string; id?: string; values: Record<string, WireValue> }
  | { op: 'update'; d: number; table: string; values: Record<string, WireValue> }
  /** An update made while the device's push is in flight (between its push and the marking clean). */
  | { op: 'update-during-push'; d: number; table: string; values: Record<string, WireValue> }
  | { op: 'delete'; d: number; table: string }
  | { op: 'sync'; d: number }
  | { op: 'sync-all' }
  | { op: 'offline' | 'online'; d: number }
  | { op: 'fault'; d: number; kind: FetchFault }
  | { op: 'crash'; d: number; point: CrashPoint }
  | { op: 'restart-server' }
  | { op: 'reinstall'; d: number };

interface SimDevice {
  readonly index: number;
  readonly user: number;
  readonly name: string;
  file: { dir: string; name: string };
  storage: MemoryAsyncStorage;
  readonly network: FakeNetworkMonitor;
  readonly faults: DeviceFaults;
  readonly skewMs: number;
  ids: number;
  client: SyncClient;
  /** The last push that got no answer: its retry must carry the same push_id. */
  unanswered: { key: string; pushId: string } | null;
  /** A local write to make while the next push is in flight. */
  duringPush: (() => Promise<void>) | null;
}

/** A value the app wrote on a device (the device's latest write of that column is `latest`). */
interface LocalWrite {
  readonly device: number;
  readonly user: number;
  readonly table: string;
  readonly id: string;
  readonly column: string;
  readonly value: WireValue;
  latest: boolean;
}

/** One acknowledged write of one column (or a delete), in the server's commit order (`ts`). */
interface Ack {
  readonly user: number;
  readonly table: string;
  readonly id: string;
  readonly column: string | null; // null: a delete
  readonly value: WireValue;
  readonly ts: number;
  /** When its push was sent (this process's clock). */
  readonly sentAt: number;
  /** The server kept its own value (a server-owned column in a conflict). */
  readonly keptByServer: boolean;
}

/**
 * A column value sent in a push that got no answer (a retryable failure: the request or its answer
 * was lost). The server may have applied it, and the retry may then go under a new push_id with
 * other values (the batch changed meanwhile), so it may be on the server without any answer ever
 * acknowledging it.
 */
export interface MaybeWrite {
  readonly value: WireValue;
  /** When the failure was seen (this process's clock): the server applied it before then, if at all. */
  readonly failedAt: number;
}

/**
 * Check 2 for one column: the latest acknowledged write (by the server's commit order) when the
 * server does not hold it, else null. The server may instead hold a value from a push whose answer
 * was lost, if that push could have been applied after the acknowledged one: its failure was seen
 * after the acknowledged push was sent. (Enum columns cannot carry unique values, so without this
 * a lost answer's value, later overridden by no acknowledged write, reads as a lost write.)
 */
export function lostAcknowledgedWrite(acks: readonly Pick<Ack, 'value' | 'ts' | 'sentAt'>[], maybes: readonly MaybeWrite[], held: WireValue | undefined): Pick<Ack, 'value' | 'ts'> | null {
  if (acks.length === 0) return null;
  const latest = acks.reduce((a, b) => (b.ts >= a.ts ? b : a));
  const same = (a: WireValue | undefined, b: WireValue) => JSON.stringify(a) === JSON.stringify(b);
  if (same(held, latest.value)) return null;
  if (held !== undefined && maybes.some((m) => same(held, m.value) && m.failedAt >= latest.sentAt)) return null;
  return latest;
}

const HOUR = 3_600_000;
const TEXT_COLUMNS: Record<string, string> = { captures: 'raw_content', todos: 'description', thoughts: 'summary', ideas: 'text', projects: 'name' };
const TOKEN = /^u(\d+)w\d+$/;

/** A value for `column` that no other write uses (enums and booleans excepted: they cannot be unique). */
function valueFor(t: TableSpec, column: string, token: string, w: number, rng: Rng): WireValue {
  const spec = columnSpec(t, column)!;
  if (spec.enum) return rng.pick(spec.enum);
  if (spec.nullable && rng.chance(0.1)) return null;
  switch (spec.type) {
    case 'integer':
      return w;
    case 'boolean':
      return rng.chance(0.5);
    case 'json_array':
      return JSON.stringify([token]);
    default:
      return token;
  }
}

function describe(c: Command): string {
  switch (c.op) {
    case 'create':
      return `d${c.d} create ${c.table}${c.id ? ` id=${c.id}` : ''} ${JSON.stringify(c.values)}`;
    case 'update':
      return `d${c.d} update ${c.table} ${JSON.stringify(c.values)}`;
    case 'update-during-push':
      return `d${c.d} sync, updating ${c.table} ${JSON.stringify(c.values)} while its push is in flight`;
    case 'delete':
      return `d${c.d} delete ${c.table}`;
    case 'sync-all':
    case 'restart-server':
      return c.op;
    case 'fault':
      return `d${c.d} fault ${c.kind}`;
    case 'crash':
      return `d${c.d} crash ${c.point}`;
    default:
      return `d${c.d} ${c.op}`;
  }
}

/** Server values as the wire (and the device) carries them. */
function normalize(t: TableSpec, row: Record<string, unknown>): Record<string, WireValue> {
  const out: Record<string, WireValue> = { id: String(row['id']), created_at: Number(row['created_at']) };
  for (const c of columnNames(t)) {
    const v = row[c];
    const type = columnSpec(t, c)!.type;
    out[c] = v === null || v === undefined ? null : type === 'integer' ? Number(v) : type === 'boolean' ? Boolean(v) : type === 'json_array' && typeof v !== 'string' ? JSON.stringify(v) : String(v);
  }
  return out;
}

export class ConvergenceRun {
  private readonly rng: Rng;
  private server!: SimServer;
  private readonly devices: SimDevice[] = [];
  private readonly acks: Ack[] = [];
  /** Column values of pushes that got no answer, by `user table/id#column`. */
  private readonly maybes = new Map<string, MaybeWrite[]>();
  private readonly log: string[] = [];
  private readonly problems: string[] = [];
  private readonly counts = newFaultCounts();
  /** Every id a device created, with its user: colliding creates reuse another user's. */
  private readonly created: Array<{ table: string; id: string; user: number }> = [];
  private readonly userIds: string[] = [];
  private writes = 0;
  private readonly localWrites: LocalWrite[] = [];
  /** Rows a device deleted: each must be gone from the server at the end (a delete is final). */
  private readonly localDeletes: Array<{ user: number; row: string; device: number }> = [];
  private syncs = 0;
  private w = 0;
  private tables: TableSpec[] = [];
  /** The timed soak lets clients sync on their own triggers, sooner than the app defaults. */
  private clientSettings: { debounceMs?: number; pollIntervalMs?: number } = {};

  constructor(
    private readonly db: Knex,
    private readonly options: RunOptions,
  ) {
    this.rng = new Rng(options.seed);
  }

  private startServer(): Promise<SimServer> {
    return this.options.startServer ? this.options.startServer() : startTestServer(this.db);
  }

  private get faultsOn(): boolean {
    return this.options.faults !== false;
  }

  private user(i: number): string {
    return this.userIds[i]!;
  }

  async run(): Promise<RunResult> {
    const started = Date.now();
    const rng = this.rng;
    // Mostly 2 users, so that most users have several devices writing the same rows.
    const users = rng.weighted([[3, 2], [2, 3], [1, 4]] as const);
    const deviceCount = rng.int(users + 1, 6);
    // Mostly a hot table or two, so that devices meet on the same rows.
    this.tables = rng.chance(0.75) ? [rng.pick(TABLES), rng.pick(TABLES)] : [...TABLES];
    for (let u = 0; u < users; u++) this.userIds.push(`s${this.options.seed}-u${u}-${started.toString(36)}`);
    this.server = await this.startServer();
    const batchSize = rng.pick([2, 5, 100]);
    const pullLimit = rng.pick([3, 10, 500]);
    try {
      for (let i = 0; i < deviceCount; i++) {
        const user = i < users ? i : rng.int(0, users - 1);
        const skewMs = rng.chance(0.5) ? 0 : rng.pick([-1, 1]) * rng.int(1, 12) * HOUR;
        const faults = new DeviceFaults(new Rng(this.options.seed * 31 + i + 1), this.counts);
        if (this.faultsOn && rng.chance(0.5)) faults.rate = rng.pick([0.05, 0.1, 0.2]);
        const name = `d${i}`;
        const dev: SimDevice = { index: i, user, name, file: newDeviceFile(name), storage: new MemoryAsyncStorage(), network: new FakeNetworkMonitor(true), faults, skewMs, ids: 0, client: undefined!, unanswered: null, duringPush: null };
        dev.client = await this.openClient(dev, batchSize, pullLimit);
        this.devices.push(dev);
      }
      this.log.push(`users=${users} tables=${[...new Set(this.tables.map((t) => t.name))].join(',')} devices=${this.devices.map((d) => `d${d.index}:u${d.user}${d.skewMs ? `(${d.skewMs / HOUR}h)` : ''}${d.faults.rate ? `(rate ${d.faults.rate})` : ''}`).join(' ')} batch=${batchSize} pullLimit=${pullLimit}`);
      const n = this.options.commands ?? rng.int(20, 50);
      for (let i = 0; i < n; i++) {
        const command = await this.nextCommand();
        this.log.push(describe(command));
        await this.execute(command, batchSize, pullLimit);
      }
      await this.healAndSettle(batchSize, pullLimit);
      if (this.problems.length === 0) await this.check();
    } catch (e) {
      this.problems.push(`run failed: ${e instanceof Error ? e.stack : String(e)}`);
    } finally {
      for (const d of this.devices) await d.client.close().catch(() => undefined);
      await this.server.close().catch(() => undefined);
    }
    return {
      seed: this.options.seed,
      ok: this.problems.length === 0,
      problems: this.problems,
      commands: this.log,
      users,
      devices: deviceCount,
      writes: this.writes,
      acknowledged: this.acks.length,
      syncs: this.syncs,
      faults: this.counts,
      ms: Date.now() - started,
    };
  }

  /**
   * The timed soak: `devices` clients of `users` users run on their own triggers (debounced
   * syncs after writes, polls, retries with backoff) while each device writes, loses its network,
   * meets faults and crashes for `durationMs`, and the server restarts at each of `restartAtMs`.
   * Then faults stop: every client must be idle with nothing pending within `recoveryBoundMs`;
   * then the same heal-and-check as a seeded run.
   */
  async soak(o: { users: number; devices: number; durationMs: number; intervalMs: number; faultRate: number; restartAtMs: readonly number[]; recoveryBoundMs: number; onProgress?: (p: { elapsedMs: number; writes: number; acknowledged: number; syncs: number; faults: FaultCounts }) => void }): Promise<RunResult & { recoveryMs: number | null }> {
    const started = Date.now();
    const rng = this.rng;
    this.tables = [...TABLES];
    this.clientSettings = { debounceMs: 100, pollIntervalMs: 5000 };
    for (let u = 0; u < o.users; u++) this.userIds.push(`soak${this.options.seed}-u${u}-${started.toString(36)}`);
    const batchSize = 100;
    const pullLimit = 500;
    let recoveryMs: number | null = null;
    this.server = await this.startServer();
    try {
      for (let i = 0; i < o.devices; i++) {
        const faults = new DeviceFaults(new Rng(this.options.seed * 31 + i + 1), this.counts);
        faults.rate = o.faultRate;
        const skewMs = i % 3 === 0 ? 0 : (i % 2 ? 1 : -1) * (1 + (i % 12)) * HOUR;
        const name = `d${i}`;
        const dev: SimDevice = { index: i, user: i % o.users, name, file: newDeviceFile(name), storage: new MemoryAsyncStorage(), network: new FakeNetworkMonitor(true), faults, skewMs, ids: 0, client: undefined!, unanswered: null, duringPush: null };
        dev.client = await this.openClient(dev, batchSize, pullLimit);
        dev.client.start();
        this.devices.push(dev);
      }
      const deadline = started + o.durationMs;
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const device = async (dev: SimDevice) => {
        while (Date.now() < deadline) {
          await sleep(rng.int(0, 2 * o.intervalMs));
          const command = await this.nextCommand({ d: dev.index });
          this.log.push(`${new Date().toISOString().slice(11, 23)} ${describe(command)}`);
          await this.execute(command, batchSize, pullLimit).catch((e: unknown) => {
            // A write racing a crash reopen finds the old database closed: it did not happen.
            if (!/closed/.test(String(e))) throw e;
          });
          if (dev.faults.crashed) {
            dev.faults.crashed = null;
            await dev.client.close();
            dev.client = await this.openClient(dev, batchSize, pullLimit);
            dev.client.start();
          }
        }
      };
      const restarts = async () => {
        for (const at of o.restartAtMs) {
          if (started + at >= deadline) break;
          await sleep(started + at - Date.now());
          this.log.push('restart-server');
          await this.server.close();
          this.server = await this.startServer();
        }
      };
      const progress = setInterval(() => o.onProgress?.({ elapsedMs: Date.now() - started, writes: this.writes, acknowledged: this.acks.length, syncs: this.syncs, faults: this.counts }), 10_000);
      try {
        await Promise.all([...this.devices.map(device), restarts()]);
      } finally {
        clearInterval(progress);
      }
      for (const dev of this.devices.filter((d) => d.faults.crashed)) {
        dev.faults.crashed = null;
        await dev.client.close();
        dev.client = await this.openClient(dev, batchSize, pullLimit);
        dev.client.start();
      }
      // Faults stop. The clients recover on their own: retry timers, the network coming back.
      const healed = Date.now();
      for (const d of this.devices) {
        d.faults.heal();
        d.network.setOnline(true);
      }
      while (Date.now() - healed < o.recoveryBoundMs) {
        const statuses = this.devices.map((d) => d.client.getStatus());
        if (statuses.every((s) => s.state === 'idle' && s.pending === 0)) {
          recoveryMs = Date.now() - healed;
          break;
        }
        await sleep(200);
      }
      if (recoveryMs === null) {
        this.problems.push(`clients not idle ${o.recoveryBoundMs} ms after faults stopped: ${this.devices.map((d) => `${d.name} ${d.client.getStatus().state}/${d.client.getStatus().pending} pending`).join(', ')}`);
      }
      for (const d of this.devices) d.client.stop();
      await this.healAndSettle(batchSize, pullLimit);
      if (this.problems.length === 0) await this.check();
    } catch (e) {
      this.problems.push(`soak failed: ${e instanceof Error ? e.stack : String(e)}`);
    } finally {
      for (const d of this.devices) await d.client.close().catch(() => undefined);
      await this.server.close().catch(() => undefined);
    }
    return { seed: this.options.seed, ok: this.problems.length === 0, problems: this.problems, commands: this.log, users: o.users, devices: o.devices, writes: this.writes, acknowledged: this.acks.length, syncs: this.syncs, faults: this.counts, ms: Date.now() - started, recoveryMs };
  }

  /** The users of this run, as the server knows them (to clean up after a soak). */
  get serverUserIds(): readonly string[] {
    return this.userIds;
  }

  // ---- devices ----

  private async openClient(dev: SimDevice, batchSize: number, pullLimit: number): Promise<SyncClient> {
    const driver = crashingDriver(new OpSqliteDriver(open({ name: dev.file.name, location: dev.file.dir }) as unknown as OpSqliteDatabase), dev.faults);
    const skewed: Timers = { now: () => Date.now() + dev.skewMs, setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) };
    const client = await createSyncClient({
      db: driver,
      checkpoints: crashingCheckpoints(new AsyncStorageCheckpointStore(dev.storage), dev.faults),
      network: dev.network,
      timers: skewed,
      newId: () => `${dev.name}i${dev.ids++}`,
      batchSize,
      pullLimit,
      transport: (deviceId) => this.transport(dev, deviceId),
      metrics: { record: () => void this.syncs++ },
      ...this.clientSettings,
    });
    const integrity = await client.local.integrityCheck();
    if (integrity !== 'ok') this.problems.push(`${dev.name}: integrity_check after open: ${integrity}`);
    return client;
  }

  private transport(dev: SimDevice, deviceId: string): SyncTransport {
    const http = new FetchSyncTransport({
      baseUrl: 'http://sync.invalid',
      getToken: () => this.server.token(this.user(dev.user)),
      deviceId,
      schemaVersion: 1,
      timeoutMs: 10_000,
      fetch: faultyFetch(dev.faults, () => this.server.url),
    });
    return {
      pull: async (params) => {
        const r = await http.pull(params);
        if (r.isOk()) {
          this.checkNoLeak(dev, r.value.changes);
          dev.faults.maybeCrash('after-pull-before-apply');
        }
        return r;
      },
      push: async (body) => {
        const key = JSON.stringify(body.changes);
        if (dev.unanswered?.key === key && dev.unanswered.pushId !== body.push_id) {
          this.problems.push(`${dev.name}: a retried push got a new push_id (${dev.unanswered.pushId} -> ${body.push_id})`);
        }
        const sentAt = Date.now();
        const answer = http.push(body);
        if (dev.duringPush) {
          const write = dev.duringPush;
          dev.duringPush = null;
          await write();
        }
        const r = await answer;
        if (r.isOk()) {
          // Killed before it marks the rows clean, the client never learned of this answer.
          dev.unanswered = dev.faults.crashAt === 'after-push-before-mark' && !dev.faults.healed ? { key, pushId: body.push_id } : null;
          this.acknowledge(dev.user, body, r.value.timestamp, sentAt, r.value.conflicts);
          dev.faults.maybeCrash('after-push-before-mark');
        } else if (r.error.retryable) {
          dev.unanswered = { key, pushId: body.push_id };
          this.sentWithoutAnswer(dev.user, body, Date.now());
        }
        return r;
      },
    };
  }

  private checkNoLeak(dev: SimDevice, changes: Record<string, { created: unknown[]; updated: unknown[] }>): void {
    for (const [table, ch] of Object.entries(changes)) {
      for (const record of [...ch.created, ...ch.updated] as Array<Record<string, unknown>>) {
        for (const v of Object.values(record)) {
          const m = typeof v === 'string' ? TOKEN.exec(v) ?? /^\["u(\d+)w\d+"\]$/.exec(v) : null;
          if (m && Number(m[1]) !== dev.user) this.problems.push(`${dev.name} (user ${dev.user}) pulled ${table} ${String(record['id'])} holding user ${m[1]}'s value ${v}`);
        }
      }
    }
  }

  /** The columns a pushed record writes: its `_changed`, or every column it carries (a create). */
  private static written(t: TableSpec, record: Record<string, WireValue>): string[] {
    return typeof record['_changed'] === 'string' ? (record['_changed'] as string).split(',').filter(Boolean) : columnNames(t).filter((c) => c in record);
  }

  private acknowledge(user: number, body: PushBody, ts: number, sentAt: number, conflicts: ReadonlyArray<{ table: string; id: string; server_columns?: readonly string[] }>): void {
    for (const [table, ch] of Object.entries(body.changes)) {
      const t = tableSpec(table)!;
      const kept = (id: string, c: string) => conflicts.some((x) => x.table === table && x.id === id && (x.server_columns ?? []).includes(c));
      for (const record of [...ch.created, ...ch.updated] as Array<Record<string, WireValue>>) {
        const id = String(record['id']);
        for (const column of ConvergenceRun.written(t, record)) this.acks.push({ user, table, id, column, value: record[column] ?? null, ts, sentAt, keptByServer: kept(id, column) });
      }
      for (const id of ch.deleted) this.acks.push({ user, table, id, column: null, value: null, ts, sentAt, keptByServer: false });
    }
  }

  private sentWithoutAnswer(user: number, body: PushBody, failedAt: number): void {
    for (const [table, ch] of Object.entries(body.changes)) {
      const t = tableSpec(table)!;
      for (const record of [...ch.created, ...ch.updated] as Array<Record<string, WireValue>>) {
        for (const column of ConvergenceRun.written(t, record)) {
          const key = `${user} ${table}/${String(record['id'])}#${column}`;
          this.maybes.set(key, [...(this.maybes.get(key) ?? []), { value: record[column] ?? null, failedAt }]);
        }
      }
    }
  }

  /** Syncs one device; a crash point that fired reopens it on the same file and storage. */
  private async syncDevice(dev: SimDevice, batchSize: number, pullLimit: number): Promise<{ ok: boolean; pushed: number; error?: string }> {
    const r = await dev.client.sync();
    if (dev.faults.crashed) {
      dev.faults.crashed = null;
      await dev.client.close();
      dev.client = await this.openClient(dev, batchSize, pullLimit);
      return { ok: false, pushed: 0, error: 'crashed' };
    }
    if (r.isErr()) return { ok: false, pushed: 0, error: `${r.error.kind}: ${r.error.message}` };
    return { ok: true, pushed: Object.values(r.value.tables).reduce((n, t) => n + t.pushed, 0) };
  }

  /** Adds to the last command's line what came of it. */
  private note(text: string): void {
    this.log[this.log.length - 1] += text;
  }

  /** Records what the app wrote on a device: its latest value of each column must reach the server. */
  private wrote(dev: SimDevice, table: string, id: string, values: Record<string, WireValue>): void {
    this.writes++;
    for (const [column, value] of Object.entries(values)) {
      for (const w of this.localWrites) if (w.device === dev.index && w.table === table && w.id === id && w.column === column) w.latest = false;
      this.localWrites.push({ device: dev.index, user: dev.user, table, id, column, value, latest: true });
    }
  }

  // ---- commands ----

  /** The next command; `timed`: one for device `d`, whose client syncs on its own triggers. */
  private async nextCommand(timed?: { d: number }): Promise<Command> {
    const rng = this.rng;
    const d = timed ? timed.d : rng.int(0, this.devices.length - 1);
    const dev = this.devices[d]!;
    const faults = this.faultsOn;
    const manual = timed ? 0 : 1;
    const op = rng.weighted<Command['op'] | 'collide'>([
      [22, 'create'],
      [22, 'update'],
      [5 * manual, 'update-during-push'],
      [7, 'delete'],
      [20 * manual, 'sync'],
      [4 * manual, 'sync-all'],
      [3, 'offline'],
      [4, 'online'],
      [faults ? 8 : 0, 'fault'],
      [faults ? 6 : 0, 'crash'],
      [faults ? manual : 0, 'restart-server'],
      [manual, 'reinstall'],
      [2, 'collide'],
    ]);
    const table = rng.pick(this.tables).name;
    const t = tableSpec(table)!;
    const token = () => `u${dev.user}w${++this.w}`;
    switch (op) {
      case 'create':
      case 'collide': {
        const values: Record<string, WireValue> = {};
        const tok = token();
        for (const c of columnNames(t)) if (!columnSpec(t, c)!.nullable || rng.chance(0.5)) values[c] = valueFor(t, c, tok, this.w, rng);
        values[TEXT_COLUMNS[table]!] = tok;
        if (table === 'captures') values['type'] = rng.pick(['audio', 'text']);
        if (op === 'collide') {
          // Another user's id that this user never used (reusing one's own deleted id is not a collision).
          const mine = new Set(this.created.filter((x) => x.table === table && x.user === dev.user).map((x) => x.id));
          const others = this.created.filter((x) => x.table === table && x.user !== dev.user && !mine.has(x.id));
          if (others.length) return { op: 'create', d, table, id: rng.pick(others).id, values };
        }
        return { op: 'create', d, table, values };
      }
      case 'update':
      case 'update-during-push': {
        const columns = columnNames(t);
        const picked = new Set([rng.chance(0.7) ? TEXT_COLUMNS[table]! : rng.pick(columns)]);
        while (rng.chance(0.4)) picked.add(rng.pick(columns));
        const tok = token();
        const values = Object.fromEntries([...picked].map((c) => [c, valueFor(t, c, tok, this.w, rng)]));
        return { op, d, table, values };
      }
      case 'delete':
        return { op, d, table };
      case 'fault':
        return { op, d, kind: rng.pick(FETCH_FAULTS) };
      case 'crash':
        return { op, d, point: rng.pick(CRASH_POINTS) };
      case 'sync-all':
      case 'restart-server':
        return { op };
      case 'offline':
        return { op: dev.network.isOnline() ? 'offline' : 'online', d };
      default:
        return { op, d } as Command;
    }
  }

  /** A row of the device to update or delete, picked by the run's generator. */
  private async pickRow(dev: SimDevice, table: string): Promise<string | null> {
    const rows = await dev.client.local.query(table, { orderBy: 'id' });
    return rows.length ? String(this.rng.pick(rows)['id']) : null;
  }

  private async execute(c: Command, batchSize: number, pullLimit: number): Promise<void> {
    switch (c.op) {
      case 'create': {
        const dev = this.devices[c.d]!;
        const record = await dev.client.local.create(c.table, { ...(c.id ? { id: c.id } : {}), ...c.values }).catch(() => null);
        if (record) {
          this.wrote(dev, c.table, String(record['id']), c.values);
          this.created.push({ table: c.table, id: String(record['id']), user: dev.user });
          this.note(` -> ${String(record['id'])}`);
        } else this.note(' -> refused (id exists here)');
        return;
      }
      case 'update': {
        const dev = this.devices[c.d]!;
        const id = await this.pickRow(dev, c.table);
        if (!id) return this.note(' -> no row');
        await dev.client.local.update(c.table, id, c.values);
        this.wrote(dev, c.table, id, c.values);
        this.note(` -> ${id}`);
        return;
      }
      case 'update-during-push': {
        const dev = this.devices[c.d]!;
        const id = await this.pickRow(dev, c.table);
        if (!id) return this.note(' -> no row');
        let when = 'after the sync (it pushed nothing)';
        const write = async () => {
          // The row may be gone by now (a pulled delete), or the client killed at a crash point.
          const done = await dev.client.local.update(c.table, id, c.values).then(() => true, () => false);
          if (done) this.wrote(dev, c.table, id, c.values);
          else when += ', refused';
        };
        dev.duringPush = async () => {
          when = 'during a push';
          await write();
        };
        const r = await this.syncDevice(dev, batchSize, pullLimit);
        if (dev.duringPush) {
          dev.duringPush = null;
          await write();
        }
        this.note(` -> ${id} ${when}; sync ${r.ok ? `ok, pushed ${r.pushed}` : r.error}`);
        return;
      }
      case 'delete': {
        const dev = this.devices[c.d]!;
        const id = await this.pickRow(dev, c.table);
        if (!id) return this.note(' -> no row');
        await dev.client.local.delete(c.table, id);
        this.writes++;
        this.localDeletes.push({ user: dev.user, row: `${c.table}/${id}`, device: dev.index });
        this.note(` -> ${id}`);
        return;
      }
      case 'sync': {
        const r = await this.syncDevice(this.devices[c.d]!, batchSize, pullLimit);
        this.note(r.ok ? ` -> ok, pushed ${r.pushed}` : ` -> ${r.error}`);
        return;
      }
      case 'sync-all': {
        const results = await Promise.all(this.devices.map((d) => this.syncDevice(d, batchSize, pullLimit)));
        this.note(` -> ${results.map((r) => (r.ok ? 'ok' : 'err')).join(',')}`);
        return;
      }
      case 'offline':
        return this.devices[c.d]!.network.setOnline(false);
      case 'online':
        return this.devices[c.d]!.network.setOnline(true);
      case 'fault':
        this.devices[c.d]!.faults.armed.push(c.kind);
        return;
      case 'crash':
        this.devices[c.d]!.faults.crashAt = c.point;
        return;
      case 'restart-server':
        // Between two syncs: the same database, a new process (and port).
        await this.server.close();
        this.server = await this.startServer();
        return;
      case 'reinstall': {
        // The app is wiped and installed again: a new database file and storage, a new device id.
        // Only once its changes are on the server, so no acknowledged-or-not write is in limbo.
        const dev = this.devices[c.d]!;
        if (!(await this.settleDevice(dev, batchSize, pullLimit))) return this.note(' -> skipped (could not sync)');
        await dev.client.close();
        dev.file = newDeviceFile(dev.name);
        dev.storage = new MemoryAsyncStorage();
        dev.unanswered = null;
        dev.client = await this.openClient(dev, batchSize, pullLimit);
        return;
      }
    }
  }

  /** Syncs one device with its faults off (then restores them) until it has nothing pending. */
  private async settleDevice(dev: SimDevice, batchSize: number, pullLimit: number): Promise<boolean> {
    const { healed, crashAt, rate } = dev.faults;
    const armed = dev.faults.armed.splice(0);
    const online = dev.network.isOnline();
    dev.faults.healed = true;
    dev.network.setOnline(true);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await this.syncDevice(dev, batchSize, pullLimit);
        if (r.ok && dev.client.getStatus().pending === 0) return true;
      }
      return false;
    } finally {
      Object.assign(dev.faults, { healed, crashAt, rate });
      dev.faults.armed.push(...armed);
      dev.network.setOnline(online);
    }
  }

  // ---- heal, settle, check ----

  private async healAndSettle(batchSize: number, pullLimit: number): Promise<void> {
    this.log.push('heal: faults off, every device online; sync until quiet');
    for (const d of this.devices) {
      d.faults.heal();
      d.network.setOnline(true);
    }
    for (let round = 0; round < 8; round++) {
      let pushed = 0;
      for (const d of this.devices) {
        const r = await this.syncDevice(d, batchSize, pullLimit);
        if (!r.ok) {
          this.problems.push(`${d.name}: sync failed after faults were healed (round ${round}): ${r.error}`);
          return;
        }
        pushed += r.pushed;
      }
      const pending = this.devices.map((d) => d.client.getStatus().pending).reduce((a, b) => a + b, 0);
      if (pushed === 0 && pending === 0) return;
    }
    this.problems.push('devices did not become quiet after 8 rounds of syncs');
  }

  private async serverRows(user: number): Promise<Map<string, Record<string, WireValue>>> {
    const out = new Map<string, Record<string, WireValue>>();
    for (const t of TABLES) {
      for (const row of await storedRows(this.db, t.name, this.user(user))) {
        if (row._status === 'active') out.set(`${t.name}/${row.id}`, normalize(t, row));
      }
    }
    return out;
  }

  private async deviceRows(dev: SimDevice): Promise<Map<string, Record<string, WireValue>>> {
    const out = new Map<string, Record<string, WireValue>>();
    for (const t of TABLES) {
      for (const row of await dev.client.local.query(t.name, { orderBy: 'id' })) out.set(`${t.name}/${String(row['id'])}`, normalize(t, row));
    }
    return out;
  }

  private async check(): Promise<void> {
    for (let u = 0; u < this.userIds.length; u++) {
      const server = await this.serverRows(u);
      // (1) every device of the user holds exactly the server's rows.
      for (const dev of this.devices.filter((d) => d.user === u)) {
        const integrity = await dev.client.local.integrityCheck();
        if (integrity !== 'ok') this.problems.push(`${dev.name}: integrity_check ${integrity}`);
        const held = await this.deviceRows(dev);
        const quarantined = await dev.client.listQuarantined();
        if (quarantined.length) this.problems.push(`${dev.name}: quarantined ${JSON.stringify(quarantined)}`);
        for (const [key, row] of server) {
          const mine = held.get(key);
          if (!mine) this.problems.push(`${dev.name} (user ${u}) lacks ${key} ${JSON.stringify(row)}`);
          else if (JSON.stringify(mine) !== JSON.stringify(row)) this.problems.push(`${dev.name} (user ${u}) holds ${key} as ${JSON.stringify(mine)}, the server as ${JSON.stringify(row)}`);
        }
        for (const [key, row] of held) {
          if (!server.has(key)) this.problems.push(`${dev.name} (user ${u}) holds ${key} ${JSON.stringify(row)}, which the server does not have for this user`);
          // (3) values carry their user: another user's value on this device is a leak.
          for (const v of Object.values(row)) {
            const m = typeof v === 'string' ? TOKEN.exec(v) : null;
            if (m && Number(m[1]) !== u) this.problems.push(`${dev.name} (user ${u}) holds user ${m[1]}'s value ${v} in ${key}`);
          }
        }
      }
      // (2) acknowledged writes: the latest acknowledged value of each column is the server's,
      // unless the row was deleted (deletes win) or the server kept its own (policy table).
      const byColumn = new Map<string, Ack[]>();
      const deleted = new Set<string>();
      for (const a of this.acks.filter((x) => x.user === u)) {
        const row = `${a.table}/${a.id}`;
        if (a.column === null) deleted.add(row);
        else if (!a.keptByServer) byColumn.set(`${row}#${a.column}`, [...(byColumn.get(`${row}#${a.column}`) ?? []), a]);
      }
      for (const row of deleted) if (server.has(row)) this.problems.push(`user ${u}: ${row} was deleted (acknowledged) but is still on the server`);
      for (const d of this.localDeletes.filter((x) => x.user === u)) {
        if (server.has(d.row)) this.problems.push(`user ${u}: d${d.device} deleted ${d.row}, yet the server still has it`);
      }
      // Every device's latest write of each column reached the server (it was acknowledged), unless
      // its row was deleted or the column is server-owned (a pull may replace a local change to it).
      for (const w of this.localWrites.filter((x) => x.user === u && x.latest)) {
        const row = `${w.table}/${w.id}`;
        if (deleted.has(row) || columnSpec(tableSpec(w.table)!, w.column)?.serverOwned) continue;
        const acked = (byColumn.get(`${row}#${w.column}`) ?? []).some((a) => JSON.stringify(a.value) === JSON.stringify(w.value));
        if (!acked) this.problems.push(`user ${u}: d${w.device}'s write ${row}.${w.column}=${JSON.stringify(w.value)} never reached the server`);
      }
      for (const [key, acks] of byColumn) {
        const [row, column] = key.split('#') as [string, string];
        if (deleted.has(row)) continue;
        const held = server.get(row);
        const lost = lostAcknowledgedWrite(acks, this.maybes.get(`${u} ${key}`) ?? [], held?.[column]);
        if (!lost) continue;
        if (!held) this.problems.push(`user ${u}: acknowledged write ${row}.${column}=${JSON.stringify(lost.value)} is lost (no such row on the server)`);
        else this.problems.push(`user ${u}: acknowledged write ${row}.${column}=${JSON.stringify(lost.value)} (ts ${lost.ts}) is lost: the server holds ${JSON.stringify(held[column])}`);
      }
    }
  }
}

export function runConvergence(db: Knex, options: RunOptions): Promise<RunResult> {
  return new ConvergenceRun(db, options).run();
}

/** What a failing run prints: its seed, what went wrong and every command, so it can be replayed. */
export function formatFailure(r: RunResult): string {
  return [
    `convergence run failed: seed ${r.seed} (replay: add {"seed": ${r.seed}} to test/reliability/regressions.json, or CONVERGENCE_SEED=${r.seed})`,
    ...r.problems.slice(0, 20).map((p) => `  problem: ${p}`),
    ...(r.problems.length > 20 ? [`  … ${r.problems.length - 20} more problems`] : []),
    '  commands:',
    ...r.commands.map((c, i) => `    ${String(i).padStart(3)} ${c}`),
  ].join('\n');
}
