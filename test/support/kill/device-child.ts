/**
 * A phone as a process of its own, for tests that kill it for real (test/support/kill/device.ts):
 * the real client on its SQLite file (WAL, as the client opens it), its checkpoints in a SQLite
 * file standing for AsyncStorage, talking to the server over HTTP. The parent drives it over IPC;
 * an answer is sent only once the step is done (a local write committed, a sync ended). Killed
 * with SIGKILL, it leaves whatever a killed app leaves.
 */
import { open } from '@op-engineering/op-sqlite';
import { AsyncStorageCheckpointStore } from '../../../mobile/src/adapters/async-storage-checkpoints';
import { FetchSyncTransport } from '../../../mobile/src/adapters/fetch-transport';
import { OpSqliteDriver, type OpSqliteDatabase } from '../../../mobile/src/adapters/op-sqlite-driver';
import { createSyncClient } from '../../../mobile/src/sync-client';
import { FakeNetworkMonitor } from '../../fakes/fake-network-monitor';
import { SqliteAsyncStorage } from '../../fakes/sqlite-async-storage';

export type Request =
  | { readonly op: 'create'; readonly table: string; readonly values: Record<string, unknown> }
  | { readonly op: 'update'; readonly table: string; readonly id: string; readonly values: Record<string, unknown> }
  | { readonly op: 'delete'; readonly table: string; readonly id: string }
  | { readonly op: 'sync' }
  | { readonly op: 'rows'; readonly table: string }
  | { readonly op: 'pending' }
  | { readonly op: 'close' };

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`device child: ${name} is not set`);
  return v;
};

async function main(): Promise<void> {
  const storage = new SqliteAsyncStorage(env('DEVICE_STORAGE_FILE'));
  const db = new OpSqliteDriver(open({ name: env('DEVICE_DB_NAME'), location: env('DEVICE_DB_DIR') }) as unknown as OpSqliteDatabase);
  const token = env('DEVICE_TOKEN');
  const client = await createSyncClient({
    db,
    checkpoints: new AsyncStorageCheckpointStore(storage),
    network: new FakeNetworkMonitor(true),
    transport: (deviceId) => new FetchSyncTransport({ baseUrl: env('DEVICE_SERVER_URL'), getToken: () => token, deviceId, schemaVersion: 1, timeoutMs: 10_000 }),
    batchSize: Number(env('DEVICE_BATCH_SIZE')),
    pullLimit: Number(env('DEVICE_PULL_LIMIT')),
  });
  const integrity = await client.local.integrityCheck();
  const handle = async (r: Request): Promise<unknown> => {
    switch (r.op) {
      case 'create':
        return client.local.create(r.table, r.values as never);
      case 'update':
        return client.local.update(r.table, r.id, r.values as never);
      case 'delete':
        return client.local.delete(r.table, r.id);
      case 'sync': {
        const result = await client.sync();
        return result.isOk() ? { ok: true } : { ok: false, error: result.error };
      }
      case 'rows':
        return client.local.query(r.table, { orderBy: 'id' });
      case 'pending':
        return client.local.countPending();
      case 'close':
        await client.close();
        await storage.close();
        setImmediate(() => process.exit(0));
        return null;
    }
  };
  process.on('message', (message: { seq: number; request: Request }) => {
    handle(message.request).then(
      (result) => process.send!({ seq: message.seq, ok: true, result }),
      (e: unknown) => process.send!({ seq: message.seq, ok: false, error: e instanceof Error ? e.message : String(e) }),
    );
  });
  process.send!({ ready: true, integrity, deviceId: client.deviceId });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
