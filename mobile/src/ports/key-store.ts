/**
 * Secrets kept by the platform (Keychain / Keystore). Contract
 * (test/contract/key-store.contract.ts): `get` of a name never set is null; a value set is read
 * back after a restart; `set` resolves only once stored.
 */
export interface KeyStore {
  get(name: string): Promise<string | null>;
  set(name: string, value: string): Promise<void>;
}
