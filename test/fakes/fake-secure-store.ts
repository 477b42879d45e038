import type { SecureStoreLike, SecureStoreOptionsLike } from '../../mobile/src/adapters/expo-secure-store-key-store';

/**
 * expo-secure-store's async API over a Map that outlives an app restart, with the module's own
 * rules: a key must be non-empty and only `[A-Za-z0-9._-]` (its `/^[\w.-]+$/`), and a value a
 * string, or the call throws expo-secure-store's message. Records the options of every call. The
 * accessibility constant is the iOS module's value (SecureStoreAccessible.afterFirstUnlockThisDeviceOnly).
 */
export class FakeSecureStore implements SecureStoreLike<number> {
  readonly AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY = 1;
  readonly items = new Map<string, { value: string; keychainAccessible?: number }>();
  readonly calls: Array<{ op: 'get' | 'set' | 'delete'; key: string; options?: SecureStoreOptionsLike<number> }> = [];

  private static ensureValidKey(key: string): void {
    if (typeof key !== 'string' || !/^[\w.-]+$/.test(key)) {
      throw new Error('Invalid key provided to SecureStore. Keys must not be empty and contain only alphanumeric characters, ".", "-", and "_".');
    }
  }

  async getItemAsync(key: string, options?: SecureStoreOptionsLike<number>): Promise<string | null> {
    FakeSecureStore.ensureValidKey(key);
    this.calls.push({ op: 'get', key, ...(options ? { options } : {}) });
    return this.items.get(key)?.value ?? null;
  }

  async setItemAsync(key: string, value: string, options?: SecureStoreOptionsLike<number>): Promise<void> {
    FakeSecureStore.ensureValidKey(key);
    if (typeof value !== 'string') throw new Error('Invalid value provided to SecureStore. Values must be strings; consider JSON-encoding your values if they are serializable.');
    this.calls.push({ op: 'set', key, ...(options ? { options } : {}) });
    this.items.set(key, { value, ...(options?.keychainAccessible !== undefined ? { keychainAccessible: options.keychainAccessible } : {}) });
  }

  async deleteItemAsync(key: string, options?: SecureStoreOptionsLike<number>): Promise<void> {
    FakeSecureStore.ensureValidKey(key);
    this.calls.push({ op: 'delete', key, ...(options ? { options } : {}) });
    this.items.delete(key);
  }
}
