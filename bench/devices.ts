import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '@op-engineering/op-sqlite';
import { AsyncStorageCheckpointStore, type AsyncStorageLike } from '../mobile/src/adapters/async-storage-checkpoints';
import { OpSqliteDriver, type OpSqliteDatabase } from '../mobile/src/adapters/op-sqlite-driver';
import type { NetworkMonitor } from '../mobile/src/ports';
import { createSyncClient, type SyncClient } from '../mobile/src/sync-client';
import { capture, indexOf, push, rate, type Endpoint } from './data';
import { childToken, databaseName, forgetChildUsers, openBenchDatabase, spawnServer } from './server-process';
import { elapsed, report } from './support';

/**
 * Phone to phone through the real server, which runs in a process of its own as in production
 * (in one process the phone and the server would share one JavaScript thread): the mobile client
 * on OP-SQLite's Node build (a real SQLite file in a temp folder, opened as the app opens it: WAL),
 * AsyncStorage's API over a Map, always online, FetchSyncTransport over HTTP. Phone 1 creates N
 * captures through the app's data API, then syncs; phone 2 (same user, its own database) syncs and
 * must hold exactly those N captures with their values. The measured time is the two syncs, each
 * with its local database work; phone 1's writes before them are reported apart. Phones push in
 * batches of the client's default (100, spec §5) and of the server's maximum (1,000), a setting
 * of the client. Then a fresh phone's first sync of 100k captures the server already has.
 */

const SIZES = [1000, 10_000];
const BATCHES = [100, 1000];
/** Wall time targets (ms) for phone 1's sync and phone 2's sync, both local databases included. */
const TARGET_MS: Record<number, number> = { 1000: 500, 10_000: 1500 };
const INITIAL = 100_000;
const INITIAL_TARGET_PER_S = 50_000;

/** The server as the phones and the seeding need it (here a child process of its own). */
type PhoneServer = Endpoint;

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

export async function openPhone(server: PhoneServer, user: string, name: string, batchSize = 100): Promise<Phone> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-device-'));
  const db = new OpSqliteDriver(open({ name: `${name}.db`, location: dir }) as unknown as OpSqliteDatabase);
  const client = await createSyncClient({
    db,
    checkpoints: new AsyncStorageCheckpointStore(new MapStorage()),
    network: online,
    batchSize,
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

async function phoneToPhone(server: PhoneServer, user: string, n: number, batchSize: number): Promise<Record<string, unknown>> {
  const one = await openPhone(server, user, 'phone-1', batchSize);
  const two = await openPhone(server, user, 'phone-2', batchSize);
  try {
    staleRetries = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await one.client.local.create('captures', capture(user, i));
    const createMs = elapsed(t0);
    const t1 = process.hrtime.bigint();
    const pushed = await syncOrThrow(one, 'phone 1');
    const sync1Ms = elapsed(t1);
    const t2 = process.hrtime.bigint();
    const pulled = await syncOrThrow(two, 'phone 2');
    const sync2Ms = elapsed(t2);
    const ms = sync1Ms + sync2Ms;

    if (pushed.pushed !== n) throw new Error(`phone 1 pushed ${pushed.pushed} of ${n}`);
    if (pulled.pulled !== n) throw new Error(`phone 2 pulled ${pulled.pulled} of ${n}`);
    await one.client.refreshCounts();
    if (one.client.getStatus().pending !== 0) throw new Error(`phone 1 still has ${one.client.getStatus().pending} pending records`);
    await checkPhone(two, user, n);
    await checkPhone(one, user, n);
    return {
      name: 'devices.phone_to_phone',
      records: n,
      push_batch: batchSize,
      ms: Math.round(ms),
      records_per_s: rate(n, ms),
      phone1_sync_ms: Math.round(sync1Ms),
      phone2_sync_ms: Math.round(sync2Ms),
      phone1_writes_ms: Math.round(createMs),
      with_writes_ms: Math.round(createMs + ms),
      stale_connection_retries: staleRetries,
      target_ms: TARGET_MS[n],
      target_met: TARGET_MS[n] === undefined ? undefined : ms < TARGET_MS[n],
    };
  } finally {
    await closePhone(one);
    await closePhone(two);
  }
}

export async function seed(server: PhoneServer, user: string, n: number): Promise<void> {
  for (let b = 0; b < n; b += 1000) {
    await push(server, user, { last_pulled_at: null, changes: { captures: { created: Array.from({ length: Math.min(1000, n - b) }, (_, k) => capture(user, b + k)) } } }, 'seed');
  }
}

async function initialSync(server: PhoneServer, user: string, n: number): Promise<Record<string, unknown>> {
  staleRetries = 0;
  const start = process.hrtime.bigint();
  const phone = await openPhone(server, user, 'fresh');
  try {
    const pulled = await syncOrThrow(phone, 'fresh phone');
    const ms = elapsed(start);
    if (pulled.pulled !== n) throw new Error(`the fresh phone pulled ${pulled.pulled} of ${n}`);
    await checkPhone(phone, user, n);
    const perS = rate(n, ms);
    return { name: 'devices.initial_sync', records: n, ms: Math.round(ms), records_per_s: perS, stale_connection_retries: staleRetries, target_records_per_s: INITIAL_TARGET_PER_S, target_met: perS >= INITIAL_TARGET_PER_S };
  } finally {
    await closePhone(phone);
  }
}

export async function benchDevices(): Promise<void> {
  const child = await spawnServer();
  const server: PhoneServer = { url: child.url, token: childToken };
  const db = openBenchDatabase();
  const run = Date.now().toString(36);
  const users: string[] = [];
  const line = (measured: Record<string, unknown>) => report({ ...measured, database: databaseName(), server: 'own process', server_rss_mb: child.memory().rss_mb });
  try {
    // Untimed warm-up: JIT, connections, the SQLite module. As large as the largest measurement:
    // a server that has been up is warm, and after a warm-up of 200 records the 10k runs still
    // paid for compiling the push path (phone 1's sync 1.5-1.6 s, against 1.2-1.3 s once warm).
    users.push(`devices-warm-${run}`);
    await phoneToPhone(server, users[0]!, 10_000, 100);
    for (const batch of BATCHES) {
      for (const n of SIZES) {
        const user = `devices-${batch}-${n}-${run}`;
        users.push(user);
        line(await phoneToPhone(server, user, n, batch));
      }
    }
    // One seeded user, two fresh phones: each first sync pulls all of it.
    const user = `devices-initial-${run}`;
    users.push(user);
    await seed(server, user, INITIAL);
    // Untimed first, as for the server with a decrypt thread below (where it starts the thread).
    await initialSync(server, user, INITIAL);
    for (let i = 0; i < 2; i++) line({ ...(await initialSync(server, user, INITIAL)), decrypt_threads: 0 });
    if (databaseName() === 'postgres') await withDecryptThread(user, line);
  } finally {
    await child.stop();
    await forgetChildUsers(db, users);
    await db?.destroy();
  }
}

/**
 * The same first syncs from a server started with DECRYPT_THREADS=1 (off by default: it costs
 * memory), on PostgreSQL, where the seeded user is already in the database. The first of its
 * large pages starts the thread, so a warm-up sync comes first.
 */
async function withDecryptThread(user: string, line: (measured: Record<string, unknown>) => void): Promise<void> {
  const child = await spawnServer({ DECRYPT_THREADS: '1' });
  try {
    const server: PhoneServer = { url: child.url, token: childToken };
    await initialSync(server, user, INITIAL);
    for (let i = 0; i < 2; i++) line({ ...(await initialSync(server, user, INITIAL)), decrypt_threads: 1, server_rss_mb: child.memory().rss_mb });
  } finally {
    await child.stop();
  }
}
