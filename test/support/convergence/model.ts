/**
 * Model-based convergence runs (docs/testing.md). A seeded generator drives 2–4 users with 2–6
 * real mobile clients (OP-SQLite's Node build, one database file each) against one real server
 * over HTTP: local creates, updates and deletes on any table, syncs (one device or all at once),
 * network loss, injected faults (faults.ts), crash points with a reopen on the same file, server
 * restarts, reinstalls and clocks hours off. Then it heals every fault, syncs until quiet and
 * checks:
 * 1. every device of a user holds exactly the server's active rows of that user, value for value;
 * 2. every write the server acknowledged is there, unless a later acknowledged write to the same
 *    column, a delete, or the policy table (a server-owned column the server kept) overrode it;
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
import { startTestServer, storedRows, type TestServer } from '../server';
import { CRASH_POINTS, DeviceFaults, FETCH_FAULTS, crashingCheckpoints, crashingDriver, faultyFetch, newFaultCounts, type CrashPoint, type FaultCounts, type FetchFault } from './faults';
import { Rng } from './rng';

export interface RunOptions {
  readonly seed: number;
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
  /** An update made while the device's sync is under way (it may land between its push and the marking clean). */
  | { op: 'update-during-sync'; d: number; table: string; values: Record<string, WireValue>; afterMs: number }
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
}

/** One acknowledged write of one column (or a delete), in the server's commit order (`ts`). */
interface Ack {
  readonly user: number;
  readonly table: string;
  readonly id: string;
  readonly column: string | null; // null: a delete
  readonly value: WireValue;
  readonly ts: number;
  /** The server kept its own value (a server-owned column in a conflict). */
  readonly keptByServer: boolean;
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
    case 'update-during-sync':
      return `d${c.d} sync, and ${c.afterMs} ms in update ${c.table} ${JSON.stringify(c.values)}`;
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
  private server!: TestServer;
  private readonly devices: SimDevice[] = [];
  private readonly acks: Ack[] = [];
  private readonly log: string[] = [];
  private readonly problems: string[] = [];
  private readonly counts = newFaultCounts();
  /** Every id a device created, with its user: colliding creates reuse another user's. */
  private readonly created: Array<{ table: string; id: string; user: number }> = [];
  private readonly userIds: string[] = [];
  private writes = 0;
  private syncs = 0;
  private w = 0;

  constructor(
    private readonly db: Knex,
    private readonly options: RunOptions,
  ) {
    this.rng = new Rng(options.seed);
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
    const users = rng.int(2, 4);
    const deviceCount = rng.int(Math.max(users, 2), 6);
    for (let u = 0; u < users; u++) this.userIds.push(`s${this.options.seed}-u${u}-${started.toString(36)}`);
    this.server = await startTestServer(this.db);
    const batchSize = rng.pick([2, 5, 100]);
    const pullLimit = rng.pick([3, 10, 500]);
    try {
      for (let i = 0; i < deviceCount; i++) {
        const user = i < users ? i : rng.int(0, users - 1);
        const skewMs = rng.chance(0.5) ? 0 : rng.pick([-1, 1]) * rng.int(1, 12) * HOUR;
        const faults = new DeviceFaults(new Rng(this.options.seed * 31 + i + 1), this.counts);
        if (this.faultsOn && rng.chance(0.5)) faults.rate = rng.pick([0.05, 0.1, 0.2]);
        const name = `d${i}`;
        const dev: SimDevice = { index: i, user, name, file: newDeviceFile(name), storage: new MemoryAsyncStorage(), network: new FakeNetworkMonitor(true), faults, skewMs, ids: 0, client: undefined!, unanswered: null };
        dev.client = await this.openClient(dev, batchSize, pullLimit);
        this.devices.push(dev);
      }
      this.log.push(`users=${users} devices=${this.devices.map((d) => `d${d.index}:u${d.user}${d.skewMs ? `(${d.skewMs / HOUR}h)` : ''}${d.faults.rate ? `(rate ${d.faults.rate})` : ''}`).join(' ')} batch=${batchSize} pullLimit=${pullLimit}`);
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
        const r = await http.push(body);
        if (r.isOk()) {
          dev.unanswered = null;
          this.acknowledge(dev.user, body, r.value.timestamp, r.value.conflicts);
          dev.faults.maybeCrash('after-push-before-mark');
        } else if (r.error.retryable) {
          dev.unanswered = { key, pushId: body.push_id };
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

  private acknowledge(user: number, body: PushBody, ts: number, conflicts: ReadonlyArray<{ table: string; id: string; server_columns?: readonly string[] }>): void {
    for (const [table, ch] of Object.entries(body.changes)) {
      const t = tableSpec(table)!;
      const kept = (id: string, c: string) => conflicts.some((x) => x.table === table && x.id === id && (x.server_columns ?? []).includes(c));
      for (const record of [...ch.created, ...ch.updated] as Array<Record<string, WireValue>>) {
        const id = String(record['id']);
        const changed = typeof record['_changed'] === 'string' ? (record['_changed'] as string).split(',').filter(Boolean) : columnNames(t).filter((c) => c in record);
        for (const column of changed) this.acks.push({ user, table, id, column, value: record[column] ?? null, ts, keptByServer: kept(id, column) });
      }
      for (const id of ch.deleted) this.acks.push({ user, table, id, column: null, value: null, ts, keptByServer: false });
    }
  }

  /** Syncs one device; a crash point that fired reopens it on the same file and storage. */
  private async syncDevice(dev: SimDevice, batchSize: number, pullLimit: number): Promise<{ ok: boolean; pushed: number; error?: string }> {
    this.syncs++;
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

  // ---- commands ----

  private async nextCommand(): Promise<Command> {
    const rng = this.rng;
    const d = rng.int(0, this.devices.length - 1);
    const dev = this.devices[d]!;
    const faults = this.faultsOn;
    const op = rng.weighted<Command['op'] | 'collide'>([
      [22, 'create'],
      [22, 'update'],
      [5, 'update-during-sync'],
      [7, 'delete'],
      [20, 'sync'],
      [4, 'sync-all'],
      [3, 'offline'],
      [4, 'online'],
      [faults ? 8 : 0, 'fault'],
      [faults ? 6 : 0, 'crash'],
      [faults ? 1 : 0, 'restart-server'],
      [1, 'reinstall'],
      [2, 'collide'],
    ]);
    const table = rng.pick(TABLES).name;
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
          const others = this.created.filter((x) => x.table === table && x.user !== dev.user);
          if (others.length) return { op: 'create', d, table, id: rng.pick(others).id, values };
        }
        return { op: 'create', d, table, values };
      }
      case 'update':
      case 'update-during-sync': {
        const columns = columnNames(t);
        const picked = new Set([rng.chance(0.7) ? TEXT_COLUMNS[table]! : rng.pick(columns)]);
        while (rng.chance(0.4)) picked.add(rng.pick(columns));
        const tok = token();
        const values = Object.fromEntries([...picked].map((c) => [c, valueFor(t, c, tok, this.w, rng)]));
        return op === 'update' ? { op, d, table, values } : { op, d, table, values, afterMs: rng.int(0, 15) };
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
          this.writes++;
          this.created.push({ table: c.table, id: String(record['id']), user: dev.user });
          this.log[this.log.length - 1] += ` -> ${String(record['id'])}`;
        } else this.log[this.log.length - 1] += ' -> refused (id exists here)';
        return;
      }
      case 'update': {
        const dev = this.devices[c.d]!;
        const id = await this.pickRow(dev, c.table);
        if (!id) return void (this.log[this.log.length - 1] += ' -> no row');
        await dev.client.local.update(c.table, id, c.values);
        this.writes++;
        this.log[this.log.length - 1] += ` -> ${id}`;
        return;
      }
      case 'update-during-sync': {
        const dev = this.devices[c.d]!;
        const id = await this.pickRow(dev, c.table);
        const syncing = this.syncDevice(dev, batchSize, pullLimit);
        await new Promise((r) => setTimeout(r, c.afterMs));
        // The row may be gone by now (a pulled delete), or the client killed at a crash point.
        const done = id ? await dev.client.local.update(c.table, id, c.values).then(() => true, () => false) : false;
        if (done) this.writes++;
        const r = await syncing;
        this.log[this.log.length - 1] += ` -> ${id ?? 'no row'}${done ? '' : ' (not written)'}; sync ${r.ok ? `ok, pushed ${r.pushed}` : r.error}`;
        return;
      }
      case 'delete': {
        const dev = this.devices[c.d]!;
        const id = await this.pickRow(dev, c.table);
        if (!id) return void (this.log[this.log.length - 1] += ' -> no row');
        await dev.client.local.delete(c.table, id);
        this.writes++;
        this.log[this.log.length - 1] += ` -> ${id}`;
        return;
      }
      case 'sync': {
        const r = await this.syncDevice(this.devices[c.d]!, batchSize, pullLimit);
        this.log[this.log.length - 1] += r.ok ? ` -> ok, pushed ${r.pushed}` : ` -> ${r.error}`;
        return;
      }
      case 'sync-all': {
        const results = await Promise.all(this.devices.map((d) => this.syncDevice(d, batchSize, pullLimit)));
        this.log[this.log.length - 1] += ` -> ${results.map((r) => (r.ok ? 'ok' : 'err')).join(',')}`;
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
        this.server = await startTestServer(this.db);
        return;
      case 'reinstall': {
        // The app is wiped and installed again: a new database file and storage, a new device id.
        // Only once its changes are on the server, so no acknowledged-or-not write is in limbo.
        const dev = this.devices[c.d]!;
        if (!(await this.settleDevice(dev, batchSize, pullLimit))) return void (this.log[this.log.length - 1] += ' -> skipped (could not sync)');
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
      for (const [key, acks] of byColumn) {
        const [row, column] = key.split('#') as [string, string];
        if (deleted.has(row)) continue;
        const latest = acks.reduce((a, b) => (b.ts >= a.ts ? b : a));
        const held = server.get(row);
        if (!held) this.problems.push(`user ${u}: acknowledged write ${row}.${column}=${JSON.stringify(latest.value)} is lost (no such row on the server)`);
        else if (JSON.stringify(held[column]) !== JSON.stringify(latest.value)) {
          this.problems.push(`user ${u}: acknowledged write ${row}.${column}=${JSON.stringify(latest.value)} (ts ${latest.ts}) is lost: the server holds ${JSON.stringify(held[column])}`);
        }
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
