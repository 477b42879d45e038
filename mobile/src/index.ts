export { createSyncClient, SyncClient, type SyncClientOptions, type SyncState, type SyncStatus } from './sync-client';
export type { SyncOptions, SyncReport, TableReport } from './sync-engine';
export { LocalDatabase, LocalWriteError, type ConflictEvent, type QueryOptions, type QuarantinedRecord } from './local-database';
export { LOCAL_SCHEMA_VERSION, LocalSchemaTooNewError } from './local-schema';
export { OpSqliteDriver, type OpSqliteDatabase } from './adapters/op-sqlite-driver';
export { AsyncStorageCheckpointStore, type AsyncStorageLike } from './adapters/async-storage-checkpoints';
export { FetchSyncTransport, type FetchTransportOptions } from './adapters/fetch-transport';
export { NetInfoNetworkMonitor, type NetInfoLike } from './adapters/netinfo-monitor';
export type * from './ports';
