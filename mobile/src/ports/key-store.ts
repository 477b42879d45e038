/**
 * Secrets kept by the platform (Keychain / Keystore). Contract
 * (test/contract/key-store.contract.ts): `get` of a name never set is null; a value set is read
 * back after a restart; `set` resolves only once stored; after `remove`, `get` reads null.
 */
export interface KeyStore {
  get(name: string): Promise<string | null>;
  set(name: string, value: string): Promise<void>;
  /**
   * Deletes the entry (a name never set is no error); afterwards `get` reads null. Used when a
   * user signs out with `wipe`, which refuses (before deleting anything) when the store has none.
   */
  remove?(name: string): Promise<void>;
}
