export { createSyncClient, SyncClient, type LiveOptions, type SyncClientOptions, type SyncState, type SyncStatus, type TokenGuard } from './sync-client';
export { WrongUserError, tokenSubject } from './identity';
export type { SyncOptions, SyncReport, TableReport } from './sync-engine';
export { LocalDatabase, LocalWriteError, type ChangeEvent, type ChangeListener, type ConflictEvent, type QueryOptions, type QuarantinedRecord } from './local-database';
export { LOCAL_SCHEMA_VERSION, LocalSchemaTooNewError, LocalSchemaError, defineLocalSchema, createTableStatements, type LocalSchema, type LocalMigration, type TableColumns } from './local-schema';
export { OpSqliteDriver, openEncryptedOpSqlite, type OpSqliteDatabase, type OpSqliteOpen } from './adapters/op-sqlite-driver';
export { AsyncStorageCheckpointStore, type AsyncStorageLike } from './adapters/async-storage-checkpoints';
export { FetchSyncTransport, type FetchTransportOptions, type GetToken } from './adapters/fetch-transport';
export { NetInfoNetworkMonitor, type NetInfoLike } from './adapters/netinfo-monitor';
export type * from './ports';
export { KeychainKeyStore, KEYCHAIN_AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY, type KeychainLike } from './adapters/keychain-key-store';
export { ExpoSecureStoreKeyStore, secureStoreKey, type SecureStoreLike, type SecureStoreOptionsLike } from './adapters/expo-secure-store-key-store';
export {
  databaseKey,
  databaseKeyName,
  openEncryptedDatabase,
  rotateDatabaseKey,
  pendingDatabaseKeyName,
  DATABASE_KEY_NAME,
  MissingDatabaseKeyError,
  WrongDatabaseKeyError,
  type DatabaseKeyOptions,
  type RotateDatabaseKeyOptions,
} from './database-key';
export { SseLiveTransport, type SseLiveTransportOptions } from './adapters/sse-live-transport';
export { FetchEventSource } from './adapters/fetch-event-source';
export { RnAppStateMonitor, type AppStateLike } from './adapters/rn-app-state-monitor';
export { LiveChannel } from './live-channel';
export { uuidV4, NoSecureRandomSourceError, type RandomBytes } from './ids';
// The shared domain an app may need: the synced tables and their columns, sync failures, retry delays.
export { TABLES, TABLE_NAMES, tableSpec, columnNames, columnSpec, type TableSpec, type ColumnSpec, type ColumnType, type WireRecord, type WireValue } from '../../src/domain';
export { MAX_RETRY_DELAY_MS, retryDelayMs, type SyncFailure, type ClientErrorCode, type SyncResultKind, type ErrorDetail, type SyncErrorCode, type ConflictType } from '../../src/domain';
