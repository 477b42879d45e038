import type { KeyStore } from '../ports';

/** The part of `react-native-keychain` this adapter uses. */
export interface KeychainLike {
  getGenericPassword(options: { service: string }): Promise<false | { password: string }>;
  setGenericPassword(username: string, password: string, options: { service: string; accessible?: string }): Promise<unknown>;
}

/** KeyStore over react-native-keychain: one generic-password entry per name (its "service"). */
export class KeychainKeyStore implements KeyStore {
  constructor(
    private readonly keychain: KeychainLike,
    /** e.g. Keychain.ACCESSIBLE.AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY, so background sync can open the database. */
    private readonly accessible?: string,
  ) {}

  async get(name: string): Promise<string | null> {
    const entry = await this.keychain.getGenericPassword({ service: name });
    return entry ? entry.password : null;
  }

  async set(name: string, value: string): Promise<void> {
    await this.keychain.setGenericPassword('sync', value, { service: name, ...(this.accessible ? { accessible: this.accessible } : {}) });
  }
}
