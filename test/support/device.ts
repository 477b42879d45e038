import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '@op-engineering/op-sqlite';
import { AsyncStorageCheckpointStore } from '../../mobile/src/adapters/async-storage-checkpoints';
import { FetchSyncTransport } from '../../mobile/src/adapters/fetch-transport';
import { OpSqliteDriver, type OpSqliteDatabase } from '../../mobile/src/adapters/op-sqlite-driver';
import type { SyncTransport, Timers } from '../../mobile/src/ports';
import { createSyncClient, type SyncClient, type SyncClientOptions } from '../../mobile/src/sync-client';
import { FakeNetworkMonitor } from '../fakes/fake-network-monitor';
import { MemoryAsyncStorage } from '../fakes/memory-async-storage';
import type { Knex } from 'knex';
import { startTestServer, type TestServer } from './server';

/**
 * A simulated phone: the real mobile client on OP-SQLite's Node build (a real SQLite file),
 * AsyncStorage's API over a Map, a network the test switches, talking to the real server over HTTP.
 * Reopening with the same `file` and `storage` is an app restart.
 */
export interface Device {
  readonly client: SyncClient;
  readonly network: FakeNetworkMonitor;
  readonly storage: MemoryAsyncStorage;
  readonly file: { dir: string; name: string };
  /** Every request the transport made, in order. */
  readonly requests: Array<{ kind: 'pull' | 'push'; body?: unknown; records?: number }>;
}

export interface DeviceOptions {
  readonly file?: { dir: string; name: string };
  readonly storage?: MemoryAsyncStorage;
  readonly network?: FakeNetworkMonitor;
  readonly wrap?: (inner: SyncTransport) => SyncTransport;
  readonly timers?: Timers;
  /** The client is created for its user (createSyncClient's `userId`), as an app with accounts does. */
  readonly signedIn?: boolean;
  /** The token the transport sends (default: the device's user's). */
  readonly token?: () => string;
  readonly extra?: Partial<SyncClientOptions>;
}

/** Deletes a device's database file and its WAL and shared-memory files (what `deleteDatabase` does in an app). */
export function deleteDeviceFile(file: { dir: string; name: string }): void {
  for (const f of readdirSync(file.dir)) if (f === file.name || f.startsWith(`${file.name}-`)) rmSync(join(file.dir, f), { force: true });
}

export function newDeviceFile(name: string): { dir: string; name: string } {
  return { dir: mkdtempSync(join(tmpdir(), 'sync-device-')), name: `${name}.db` };
}

export async function openDevice(server: TestServer, userId: string, options: DeviceOptions = {}): Promise<Device> {
  const file = options.file ?? newDeviceFile(userId);
  const storage = options.storage ?? new MemoryAsyncStorage();
  const network = options.network ?? new FakeNetworkMonitor(true);
  const requests: Device['requests'] = [];
  const db = new OpSqliteDriver(open({ name: file.name, location: file.dir }) as unknown as OpSqliteDatabase);
  const token = options.token ?? (() => server.token(userId));
  // A client refused at creation (another user's database) leaves no connection open.
  const client = await createSyncClient({
    ...(options.signedIn ? { userId, deleteDatabase: async () => deleteDeviceFile(file) } : {}),
    db,
    checkpoints: new AsyncStorageCheckpointStore(storage),
    network,
    transport: (deviceId, guard) => {
      const http = new FetchSyncTransport({ baseUrl: server.url, getToken: guard(token), deviceId, schemaVersion: 1 });
      const recording: SyncTransport = {
        pull: async (p) => {
          const r = await http.pull(p);
          const records = r.isOk() ? Object.values(r.value.changes).reduce((n, c) => n + c.created.length + c.updated.length + c.deleted.length, 0) : undefined;
          requests.push({ kind: 'pull', ...(records !== undefined ? { records } : {}) });
          return r;
        },
        push: async (b) => {
          requests.push({ kind: 'push', body: b });
          return http.push(b);
        },
      };
      return options.wrap ? options.wrap(recording) : recording;
    },
    ...(options.timers ? { timers: options.timers } : {}),
    ...options.extra,
  }).catch(async (e: unknown) => {
    await db.close();
    throw e;
  });
  return { client, network, storage, file, requests };
}

/** Everything a device shows the app, per table, sorted by id, without the sync bookkeeping. */
export async function deviceRows(device: Device, table: string): Promise<Record<string, unknown>[]> {
  const rows = await device.client.local.query(table, { orderBy: 'id' });
  return rows.map(({ last_modified_at: _lm, ...rest }) => rest);
}

/**
 * Declares, inside a describeEachDatabase suite, one real server for the suite and devices that
 * are closed after each test. `device()` opens one (and tracks it); `server()` is the server.
 */
export function useDevices(ctx: { readonly database: { readonly db: Knex } }, env: Record<string, string> = {}): { server: () => TestServer; device: (user: string, options?: DeviceOptions) => Promise<Device> } {
  let server: TestServer;
  const open: Device[] = [];
  before(async () => {
    server = await startTestServer(ctx.database.db, env);
  });
  after(() => server.close());
  afterEach(async () => {
    for (const d of open.splice(0)) await d.client.close().catch(() => undefined);
  });
  const device = async (user: string, options: DeviceOptions = {}) => {
    const d = await openDevice(server, user, options);
    open.push(d);
    return d;
  };
  return { server: () => server, device };
}
