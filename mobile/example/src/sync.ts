import { open } from '@op-engineering/op-sqlite';
import AsyncStorage from '@react-native-async-storage/async-storage';
import NetInfo from '@react-native-community/netinfo';
import { AsyncStorageCheckpointStore, NetInfoNetworkMonitor, OpSqliteDriver, createSyncClient, type SyncClient } from '@note-sync/mobile';
import { config } from './config';

/**
 * Opens the local database and builds the client. Async on purpose: it is awaited inside an
 * effect (see App), never at the top level of a module — Hermes has no top-level `await`.
 */
export async function init(): Promise<SyncClient> {
  const client = await createSyncClient({
    db: new OpSqliteDriver(open({ name: config.databaseName })),
    checkpoints: new AsyncStorageCheckpointStore(AsyncStorage),
    network: new NetInfoNetworkMonitor(NetInfo),
    server: {
      baseUrl: config.serverUrl,
      getToken: () => config.token,
      schemaVersion: config.schemaVersion,
      timeoutMs: config.timeoutMs,
    },
  });
  // Syncs now, after local writes (debounced), every 15 minutes and when the network returns.
  client.start();
  return client;
}
