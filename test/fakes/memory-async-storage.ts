import type { AsyncStorageLike } from '../../mobile/src/adapters/async-storage-checkpoints';

/** AsyncStorage's API over a Map that outlives a client, as the real storage outlives an app restart. */
export class MemoryAsyncStorage implements AsyncStorageLike {
  readonly items = new Map<string, string>();

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
