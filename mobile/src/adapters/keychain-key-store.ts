import type { KeyStore } from '../ports';

/**
 * The part of `react-native-keychain` this adapter uses. `Accessible` is the module's own type for
 * `accessible` (its ACCESSIBLE enum), inferred from the module passed in, so the module is
 * accepted as it is typed (test/types/adapters.typecheck.ts).
 */
export interface KeychainLike<Accessible extends string = string> {
  getGenericPassword(options: { service: string }): Promise<false | { password: string }>;
  setGenericPassword(username: string, password: string, options: { service: string; accessible?: Accessible }): Promise<unknown>;
  /** Deletes an entry (react-native-keychain has it); needed only for `remove` (a sign-out with wipe). */
  resetGenericPassword?(options: { service: string }): Promise<unknown>;
}

/**
 * react-native-keychain's `ACCESSIBLE.AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY`: readable after the
 * first unlock since boot, so a sync in the background can open the database while the phone is
 * locked; never carried to another device by a backup or iCloud Keychain.
 */
export const KEYCHAIN_AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY = 'AccessibleAfterFirstUnlockThisDeviceOnly';

/** KeyStore over react-native-keychain: one generic-password entry per name (its "service"). */
export class KeychainKeyStore<Accessible extends string = string> implements KeyStore {
  private readonly accessible: Accessible;

  constructor(
    private readonly keychain: KeychainLike<Accessible>,
    /** Default `ACCESSIBLE.AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY` (see above); pass another to override. */
    accessible?: Accessible,
  ) {
    this.accessible = accessible ?? (KEYCHAIN_AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY as Accessible);
  }

  async get(name: string): Promise<string | null> {
    const entry = await this.keychain.getGenericPassword({ service: name });
    return entry ? entry.password : null;
  }

  async set(name: string, value: string): Promise<void> {
    await this.keychain.setGenericPassword('sync', value, { service: name, accessible: this.accessible });
  }

  async remove(name: string): Promise<void> {
    if (!this.keychain.resetGenericPassword) throw new Error('this keychain module has no resetGenericPassword: the entry cannot be deleted');
    await this.keychain.resetGenericPassword({ service: name });
  }
}
