import type { CheckpointStore, PushAttempt } from '../ports';

/** The part of `@react-native-async-storage/async-storage` this adapter uses. */
export interface AsyncStorageLike {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

export const checkpointKey = (table: string): string => `sync_last_pulled_${table}`;
export const DEVICE_ID_KEY = 'sync_device_id';
/** Slot 0 keeps the key of the one slot there was before (an attempt left by an older version is found). */
export const pushAttemptKey = (table: string, slot = 0): string => {
  if (!(Number.isInteger(slot) && slot >= 0 && slot < 16)) throw new RangeError(`push attempt slot ${slot} is not a whole number from 0 to 15`);
  return slot === 0 ? `sync_push_attempt_${table}` : `sync_push_attempt_${table}#${slot}`; // "#": no table name has one
};

/** CheckpointStore over AsyncStorage, with the keys of spec §5. */
export class AsyncStorageCheckpointStore implements CheckpointStore {
  constructor(private readonly storage: AsyncStorageLike) {}

  async getLastPulledAt(table: string): Promise<number | null> {
    const raw = await this.storage.getItem(checkpointKey(table));
    const n = raw === null ? NaN : Number(raw);
    return Number.isFinite(n) && n > 0 ? n : null;
  }

  async setLastPulledAt(table: string, timestamp: number | null): Promise<void> {
    if (timestamp === null) await this.storage.removeItem(checkpointKey(table));
    else await this.storage.setItem(checkpointKey(table), String(timestamp));
  }

  getDeviceId(): Promise<string | null> {
    return this.storage.getItem(DEVICE_ID_KEY);
  }

  setDeviceId(id: string): Promise<void> {
    return this.storage.setItem(DEVICE_ID_KEY, id);
  }

  async getPushAttempt(table: string, slot = 0): Promise<PushAttempt | null> {
    const raw = await this.storage.getItem(pushAttemptKey(table, slot));
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
    if (attempt === null) await this.storage.removeItem(pushAttemptKey(table, slot));
    else await this.storage.setItem(pushAttemptKey(table, slot), JSON.stringify(attempt));
  }
}
