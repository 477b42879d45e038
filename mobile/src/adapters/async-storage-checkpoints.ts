import type { CheckpointStore, PushAttempt } from '../ports';

/** The part of `@react-native-async-storage/async-storage` this adapter uses. */
export interface AsyncStorageLike {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

export const checkpointKey = (table: string): string => `sync_last_pulled_${table}`;
export const DEVICE_ID_KEY = 'sync_device_id';
export const DATABASE_ID_KEY = 'sync_database_id';
/** Slot 0 keeps the key of the one slot there was before (an attempt left by an older version is found). */
export const pushAttemptKey = (table: string, slot = 0): string => {
  if (!(Number.isInteger(slot) && slot >= 0 && slot < 16)) throw new RangeError(`push attempt slot ${slot} is not a whole number from 0 to 15`);
  return slot === 0 ? `sync_push_attempt_${table}` : `sync_push_attempt_${table}#${slot}`; // "#": no table name has one
};
/**
 * A scoped key: the unscoped key (spec §5's, for the store without a scope) and `@` with the
 * scope, percent-encoded so that no scope's keys can be another's ("@" is in no unscoped key).
 */
export const scopedKey = (key: string, scope: string | null): string => (scope === null ? key : `${key}@${encodeURIComponent(scope)}`);

/** CheckpointStore over AsyncStorage, with the keys of spec §5 (plus `@scope` for a scoped store). */
export class AsyncStorageCheckpointStore implements CheckpointStore {
  constructor(
    private readonly storage: AsyncStorageLike,
    /** The scope's name (one user's checkpoints); null: spec §5's keys, as before scopes. */
    private readonly scopeName: string | null = null,
  ) {}

  scope(name: string): AsyncStorageCheckpointStore {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('a checkpoint scope needs a non-empty name');
    return new AsyncStorageCheckpointStore(this.storage, name);
  }

  private key(key: string): string {
    return scopedKey(key, this.scopeName);
  }

  private async put(key: string, value: string | null): Promise<void> {
    if (value === null) await this.storage.removeItem(this.key(key));
    else await this.storage.setItem(this.key(key), value);
  }

  async getLastPulledAt(table: string): Promise<number | null> {
    const raw = await this.storage.getItem(this.key(checkpointKey(table)));
    const n = raw === null ? NaN : Number(raw);
    return Number.isFinite(n) && n > 0 ? n : null;
  }

  setLastPulledAt(table: string, timestamp: number | null): Promise<void> {
    return this.put(checkpointKey(table), timestamp === null ? null : String(timestamp));
  }

  getDeviceId(): Promise<string | null> {
    return this.storage.getItem(this.key(DEVICE_ID_KEY));
  }

  setDeviceId(id: string | null): Promise<void> {
    return this.put(DEVICE_ID_KEY, id);
  }

  getDatabaseId(): Promise<string | null> {
    return this.storage.getItem(this.key(DATABASE_ID_KEY));
  }

  setDatabaseId(id: string | null): Promise<void> {
    return this.put(DATABASE_ID_KEY, id);
  }

  async getPushAttempt(table: string, slot = 0): Promise<PushAttempt | null> {
    const raw = await this.storage.getItem(this.key(pushAttemptKey(table, slot)));
    if (raw === null) return null;
    try {
      const a = JSON.parse(raw) as Partial<PushAttempt>;
      if (typeof a.key === 'string' && typeof a.pushId === 'string' && (a.lastPulledAt === null || typeof a.lastPulledAt === 'number')) {
        return { key: a.key, pushId: a.pushId, lastPulledAt: a.lastPulledAt };
      }
    } catch {
      // unreadable: as if none (the batch then goes with a new push_id)
    }
    return null;
  }

  async setPushAttempt(table: string, attempt: PushAttempt | null, slot = 0): Promise<void> {
    await this.put(pushAttemptKey(table, slot), attempt === null ? null : JSON.stringify(attempt));
  }
}
