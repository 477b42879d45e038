import type { CheckpointStore, PushAttempt } from '../ports';

/** The part of `@react-native-async-storage/async-storage` this adapter uses. */
export interface AsyncStorageLike {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

export const checkpointKey = (table: string): string => `sync_last_pulled_${table}`;
export const DEVICE_ID_KEY = 'sync_device_id';
export const pushAttemptKey = (table: string): string => `sync_push_attempt_${table}`;

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

  async getPushAttempt(table: string): Promise<PushAttempt | null> {
    const raw = await this.storage.getItem(pushAttemptKey(table));
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

  async setPushAttempt(table: string, attempt: PushAttempt | null): Promise<void> {
    if (attempt === null) await this.storage.removeItem(pushAttemptKey(table));
    else await this.storage.setItem(pushAttemptKey(table), JSON.stringify(attempt));
  }
}
