/**
 * The key of the encrypted local database (SQLCipher through OP-SQLite's `encryptionKey`). It is
 * created once, on the first run, and kept by the KeyStore; later runs reuse it. A database that
 * exists while its key is gone is an explicit error: opening it with a new key would look like an
 * empty database and the app would silently start over, losing every unsynced note.
 */
import { secureRandomBytes, type RandomBytes } from './ids';
import type { KeyStore } from './ports';

export const DATABASE_KEY_NAME = 'note-sync.database-key';

/** The key store entry of a user's database key (each user's database has its own key); without a user, the one name of before. */
export const databaseKeyName = (userId?: string): string => (userId === undefined ? DATABASE_KEY_NAME : `${DATABASE_KEY_NAME}.${encodeURIComponent(userId)}`);

export class MissingDatabaseKeyError extends Error {}

export interface DatabaseKeyOptions {
  readonly keyStore: KeyStore;
  /** Whether the database file is already there (e.g. react-native-fs `exists(path)`). */
  readonly databaseExists: () => Promise<boolean>;
  /** Cryptographically random bytes; the default uses `crypto.getRandomValues` (react-native-get-random-values on older engines). */
  readonly randomBytes?: RandomBytes;
  /**
   * The user whose database this is: the key is kept under `databaseKeyName(userId)`. A user
   * without a key of their own whose database exists takes over the key of before users (the
   * one under DATABASE_KEY_NAME, then removed if the store can): that database is the one the
   * app used before it had accounts, now named as this user's.
   */
  readonly userId?: string;
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

export async function databaseKey(options: DatabaseKeyOptions): Promise<string> {
  const name = databaseKeyName(options.userId);
  const stored = await options.keyStore.get(name);
  if (stored) return stored;
  const exists = await options.databaseExists();
  if (exists && name !== DATABASE_KEY_NAME) {
    const legacy = await options.keyStore.get(DATABASE_KEY_NAME);
    if (legacy) {
      await options.keyStore.set(name, legacy);
      await options.keyStore.remove?.(DATABASE_KEY_NAME);
      return legacy;
    }
  }
  if (exists) {
    throw new MissingDatabaseKeyError('The local database exists but its key is missing from the key store; refusing to open it with a new key (that would hide the data behind an empty database).');
  }
  const key = hex((options.randomBytes ?? secureRandomBytes)(32));
  await options.keyStore.set(name, key);
  return key;
}
