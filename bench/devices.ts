import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '@op-engineering/op-sqlite';
import { AsyncStorageCheckpointStore, type AsyncStorageLike } from '../mobile/src/adapters/async-storage-checkpoints';
import { OpSqliteDriver, type OpSqliteDatabase } from '../mobile/src/adapters/op-sqlite-driver';
import type { NetworkMonitor } from '../mobile/src/ports';
import { createSyncClient, type SyncClient } from '../mobile/src/sync-client';
import { capture, indexOf, push, rate } from './data';
import { elapsed, report, startBenchServer, type BenchServer } from './support';

/**
 * Phone to phone through the real server: the mobile client on OP-SQLite's Node build (a real
 * SQLite file in a temp folder), AsyncStorage's API over a Map, always online, FetchSyncTransport
 * over HTTP. Phone 1 creates N captures through the app's data API and syncs; phone 2 (same user,
 * its own database) syncs and must hold exactly those N captures with their values. Then a fresh
 * phone's first sync of 100k captures the server already has.
 */

const SIZES = [1000, 10_000];
/** Wall time targets (ms) for phone 1's writes, its sync and phone 2's sync, both local databases included. */
const TARGET_MS: Record<number, number> = { 1000: 500, 10_000: 1500 };
const INITIAL = 100_000;
const INITIAL_TARGET_PER_S = 50_000;

class MapStorage implements AsyncStorageLike {
  private readonly items = new Map<string, string>();
  async getItem(key: string): Promise<string | null> {
    return this.items.get(key) ?? null;
  }
  async setItem(key: string, value: string): Promise<void> {
    this.items.set(key, value);
  }
  async removeItem(key: string): Promise<void> {
    this.items.delete(key);
  }
}

const online: NetworkMonitor = { isOnline: () => true, subscribe: () => () => undefined };

/**
 * A phone's HTTP stack retries a request once when the pooled keep-alive connection it picked
 * turns out to be closed (OkHttp and NSURLSession both do). Node's fetch does not: after more than
 * about 5 s idle (the server's keep-alive timeout) a request on a pooled socket can fail with
 * ECONNRESET. The bench does what the phone would, and counts how often it had to.
 */
let staleRetries = 0;
const phoneFetch: typeof fetch = async (input, init) => {
  try {
    return await fetch(input, init);
  } catch (e) {
    const code = (e as { cause?: { code?: string } }).cause?.code;
    if (code !== 'ECONNRESET' && code !== 'UND_ERR_SOCKET') throw e;
    staleRetries++;
    return fetch(input, init);
  }
};

interface Phone {
  client: SyncClient;
  dir: string;
}

/**
 * `default`: the database as the app opens it today (SQLite's rollback journal, synchronous=FULL:
 * every local write commits with its own fsyncs). `wal`: the same with `journal_mode=WAL` and
 * `synchronous=NORMAL` set right after open, to show what that setting would change.
 */
export type Journal = 'default' | 'wal';

export async function openPhone(server: BenchServer, user: string, name: string, journal: Journal = 'default'): Promise<Phone> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-device-'));
  const sqlite = open({ name: `${name}.db`, location: dir }) as unknown as OpSqliteDatabase;
  if (journal === 'wal') {
    await sqlite.execute('PRAGMA journal_mode = WAL');
    await sqlite.execute('PRAGMA synchronous = NORMAL');
  }
  const db = new OpSqliteDriver(sqlite);
  const client = await createSyncClient({
    db,
    checkpoints: new AsyncStorageCheckpointStore(new MapStorage()),
    network: online,
    server: { baseUrl: server.url, getToken: () => server.token(user), schemaVersion: 1, fetch: phoneFetch },
  });
  return { client, dir };
}

export async function closePhone(phone: Phone): Promise<void> {
  await phone.client.close().catch(() => undefined);
  rmSync(phone.dir, { recursive: true, force: true });
}

export async function syncOrThrow(phone: Phone, what: string): Promise<{ pulled: number; pushed: number }> {
  const r = await phone.client.sync();
  if (r.isErr()) throw new Error(`${what}: sync failed: ${r.error.kind} ${r.error.message}`);
  const captures = r.value.tables['captures'];
  return { pulled: captures?.pulled ?? 0, pushed: captures?.pushed ?? 0 };
}

/** The phone's captures are exactly capture(user, 0..n-1), every column equal. */
async function checkPhone(phone: Phone, user: string, n: number): Promise<void> {
  const rows = await phone.client.local.query('captures', { orderBy: 'id' });
  if (rows.length !== n) throw new Error(`the phone holds ${rows.length} of ${n} captures`);
  const seen = new Uint8Array(n);
  for (const row of rows) {
    const i = indexOf(String(row['id']));
    if (!(i >= 0 && i < n) || seen[i]) throw new Error(`unexpected or repeated capture ${String(row['id'])} on the phone`);
    seen[i] = 1;
    const want = capture(user, i);
    for (const [column, value] of Object.entries(want)) {
      if (row[column] !== value) throw new Error(`capture ${want.id} has ${column} = ${JSON.stringify(row[column])}, expected ${JSON.stringify(value)}`);
    }
    if (row['state'] !== 'captured' || typeof row['last_modified_at'] !== 'number') throw new Error(`capture ${want.id} is not a synced, server-stamped row: ${JSON.stringify(row)}`);
  }
}

async function phoneToPhone(server: BenchServer, user: string, n: number, journal: Journal): Promise<Record<string, unknown>> {
  const one = await openPhone(server, user, 'phone-1', journal);
  const two = await openPhone(server, user, 'phone-2', journal);
  try {
    staleRetries = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await one.client.local.create('captures', capture(user, i));
    const createMs = elapsed(start);
    const t1 = process.hrtime.bigint();
    const pushed = await syncOrThrow(one, 'phone 1');
    const sync1Ms = elapsed(t1);
    const t2 = process.hrtime.bigint();
    const pulled = await syncOrThrow(two, 'phone 2');
    const sync2Ms = elapsed(t2);
    const ms = elapsed(start);

    if (pushed.pushed !== n) throw new Error(`phone 1 pushed ${pushed.pushed} of ${n}`);
    if (pulled.pulled !== n) throw new Error(`phone 2 pulled ${pulled.pulled} of ${n}`);
    await one.client.refreshCounts();
    if (one.client.getStatus().pending !== 0) throw new Error(`phone 1 still has ${one.client.getStatus().pending} pending records`);
    await checkPhone(two, user, n);
    await checkPhone(one, user, n);
    return {
      name: 'devices.phone_to_phone',
      database: server.database,
      sqlite_journal: journal,
      records: n,
      ms: Math.round(ms),
      records_per_s: rate(n, ms),
      create_ms: Math.round(createMs),
      phone1_sync_ms: Math.round(sync1Ms),
      phone2_sync_ms: Math.round(sync2Ms),
      stale_connection_retries: staleRetries,
      target_ms: TARGET_MS[n],
      target_met: TARGET_MS[n] === undefined ? undefined : ms < TARGET_MS[n],
    };
  } finally {
    await closePhone(one);
    await closePhone(two);
  }
}

export async function seed(server: BenchServer, user: string, n: number): Promise<void> {
  for (let b = 0; b < n; b += 1000) {
    await push(server, user, { last_pulled_at: null, changes: { captures: { created: Array.from({ length: Math.min(1000, n - b) }, (_, k) => capture(user, b + k)) } } }, 'seed');
  }
}

async function initialSync(server: BenchServer, user: string, n: number, journal: Journal): Promise<void> {
  staleRetries = 0;
  const start = process.hrtime.bigint();
  const phone = await openPhone(server, user, 'fresh', journal);
  try {
    const pulled = await syncOrThrow(phone, 'fresh phone');
    const ms = elapsed(start);
    if (pulled.pulled !== n) throw new Error(`the fresh phone pulled ${pulled.pulled} of ${n}`);
    await checkPhone(phone, user, n);
    const perS = rate(n, ms);
    report({ name: 'devices.initial_sync', database: server.database, sqlite_journal: journal, records: n, ms: Math.round(ms), records_per_s: perS, stale_connection_retries: staleRetries, target_records_per_s: INITIAL_TARGET_PER_S, target_met: perS >= INITIAL_TARGET_PER_S });
  } finally {
    await closePhone(phone);
  }
}

export async function benchDevices(): Promise<void> {
  const server = await startBenchServer();
  const run = Date.now().toString(36);
  const users: string[] = [];
  try {
    // Untimed warm-up: JIT, connections, the SQLite module.
    users.push(`devices-warm-${run}`);
    await phoneToPhone(server, users[0]!, 200, 'wal');
    for (const journal of ['default', 'wal'] as const) {
      for (const n of SIZES) {
        const user = `devices-${journal}-${n}-${run}`;
        users.push(user);
        report(await phoneToPhone(server, user, n, journal));
      }
    }
    // One seeded user, two fresh phones: each first sync pulls all of it.
    const user = `devices-initial-${run}`;
    users.push(user);
    await seed(server, user, INITIAL);
    for (const journal of ['default', 'wal'] as const) await initialSync(server, user, INITIAL, journal);
  } finally {
    await server.forget(users);
    await server.close();
  }
}
