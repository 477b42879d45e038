import type { KeyStore } from '../ports';

/** expo-secure-store's options, as this adapter passes them. */
export interface SecureStoreOptionsLike<Accessible> {
  keychainAccessible?: Accessible;
}

/**
 * The part of `expo-secure-store` this adapter uses: pass the module itself
 * (`import * as SecureStore from 'expo-secure-store'`). Its accessibility constants come from the
 * native module at run time, so the adapter reads `AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY` from it.
 */
export interface SecureStoreLike<Accessible = number> {
  getItemAsync(key: string, options?: SecureStoreOptionsLike<Accessible>): Promise<string | null>;
  setItemAsync(key: string, value: string, options?: SecureStoreOptionsLike<Accessible>): Promise<void>;
  deleteItemAsync(key: string, options?: SecureStoreOptionsLike<Accessible>): Promise<void>;
  readonly AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY: Accessible;
}

/** The characters SecureStore accepts in a key, besides the escape character `_`. */
const PLAIN = /[A-Za-z0-9.-]/;

/**
 * A KeyStore name as a SecureStore key. SecureStore accepts only `[A-Za-z0-9._-]` (anything else
 * throws), while a key name may carry anything (a user id such as `auth0|42`). Letters, digits,
 * `.` and `-` stay as they are; any other UTF-16 unit, `_` included, becomes `_` and four hex
 * digits. Distinct names give distinct keys, and names made of the plain characters (such as
 * `note-sync.database-key`) are kept unchanged.
 */
export function secureStoreKey(name: string): string {
  if (name === '') throw new Error('A key name must not be empty.');
  let key = '';
  for (const ch of name.split('')) key += PLAIN.test(ch) ? ch : `_${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
  return key;
}

/**
 * KeyStore over Expo's SecureStore (Keychain on iOS, Keystore-encrypted preferences on Android),
 * for apps on Expo's managed workflow. Entries are written with `keychainAccessible:
 * AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY` unless another is given: readable in the background after
 * the first unlock, never restored onto another device.
 */
export class ExpoSecureStoreKeyStore<Accessible = number> implements KeyStore {
  private readonly options: SecureStoreOptionsLike<Accessible>;

  constructor(
    private readonly secureStore: SecureStoreLike<Accessible>,
    accessible?: Accessible,
  ) {
    this.options = { keychainAccessible: accessible ?? secureStore.AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY };
  }

  get(name: string): Promise<string | null> {
    return this.secureStore.getItemAsync(secureStoreKey(name), this.options);
  }

  set(name: string, value: string): Promise<void> {
    return this.secureStore.setItemAsync(secureStoreKey(name), value, this.options);
  }

  remove(name: string): Promise<void> {
    return this.secureStore.deleteItemAsync(secureStoreKey(name), this.options);
  }
}
