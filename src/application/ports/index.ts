export type * from './change-store';
export type * from './clock';
export type * from './digest';
export type * from './token-verifier';
export type * from './sync-log';
export type * from './metrics';
export type * from './retention-store';
export type * from './live-notifier';
export { liveChannelName } from './live-notifier';

/** Injection tokens, one per port or use case; only the composition root binds them. */
export const TOKENS = {
  ChangeStore: Symbol.for('ChangeStore'),
  Clock: Symbol.for('Clock'),
  Digest: Symbol.for('Digest'),
  TokenVerifier: Symbol.for('TokenVerifier'),
  SyncSettings: Symbol.for('SyncSettings'),
  PullChanges: Symbol.for('PullChanges'),
  PushChanges: Symbol.for('PushChanges'),
  CheckReadiness: Symbol.for('CheckReadiness'),
  GetSyncStats: Symbol.for('GetSyncStats'),
  GetSyncSeries: Symbol.for('GetSyncSeries'),
  GetRuntime: Symbol.for('GetRuntime'),
  RuntimeProbe: Symbol.for('RuntimeProbe'),
  SyncLog: Symbol.for('SyncLog'),
  SyncLogStore: Symbol.for('SyncLogStore'),
  SyncStatsQuery: Symbol.for('SyncStatsQuery'),
  Alerts: Symbol.for('Alerts'),
  Metrics: Symbol.for('Metrics'),
  FieldCipher: Symbol.for('FieldCipher'),
  RetentionStore: Symbol.for('RetentionStore'),
  PurgeExpiredData: Symbol.for('PurgeExpiredData'),
  LiveFeed: Symbol.for('LiveFeed'),
} as const;
export type * from './field-cipher';
export { CIPHERTEXT_PREFIX } from './field-cipher';
