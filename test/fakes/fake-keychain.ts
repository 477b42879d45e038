import type { KeychainLike } from '../../mobile/src/adapters/keychain-key-store';

/**
 * react-native-keychain's generic-password API over a Map that outlives an app restart (as the
 * device's keychain does), recording the options of every write so a test can see the
 * accessibility asked for. Passes the KeyStore contract through KeychainKeyStore.
 */
export class FakeKeychain implements KeychainLike {
  readonly items = new Map<string, { username: string; password: string; accessible?: string }>();
  readonly writes: Array<{ service: string; accessible?: string }> = [];

  async getGenericPassword({ service }: { service: string }): Promise<false | { password: string }> {
    const item = this.items.get(service);
    return item ? { password: item.password } : false;
  }

  async setGenericPassword(username: string, password: string, options: { service: string; accessible?: string }): Promise<unknown> {
    this.writes.push({ ...options });
    this.items.set(options.service, { username, password, ...(options.accessible ? { accessible: options.accessible } : {}) });
    return { service: options.service, storage: 'keychain' };
  }

  async resetGenericPassword({ service }: { service: string }): Promise<boolean> {
    return this.items.delete(service);
  }
}
