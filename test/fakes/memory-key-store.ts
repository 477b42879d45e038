import type { KeyStore } from '../../mobile/src/ports';

/** A platform key store kept in a Map that outlives an app restart; passes the KeyStore contract. */
export class MemoryKeyStore implements KeyStore {
  readonly entries = new Map<string, string>();

  async get(name: string): Promise<string | null> {
    return this.entries.get(name) ?? null;
  }

  async set(name: string, value: string): Promise<void> {
    this.entries.set(name, value);
  }

  async remove(name: string): Promise<void> {
    this.entries.delete(name);
  }
}
