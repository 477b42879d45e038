/**
 * The key of the encrypted local database (SQLCipher through OP-SQLite's `encryptionKey`). It is
 * created once, on the first run, and kept by the KeyStore; later runs reuse it. A database that
 * exists while its key is gone is an explicit error: opening it with a new key would look like an
 * empty database and the app would silently start over, losing every unsynced note.
 */
import { secureRandomBytes, type RandomBytes } from './ids';
import type { KeyStore } from './ports';

export const DATABASE_KEY_NAME = 'note-sync.database-key';

export class MissingDatabaseKeyError extends Error {}

export interface DatabaseKeyOptions {
  readonly keyStore: KeyStore;
  /** Whether the database file is already there (e.g. react-native-fs `exists(path)`). */
  readonly databaseExists: () => Promise<boolean>;
  /** Cryptographically random bytes; the default uses `crypto.getRandomValues` (react-native-get-random-values on older engines). */
  readonly randomBytes?: RandomBytes;
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

export async function databaseKey(options: DatabaseKeyOptions): Promise<string> {
  const stored = await options.keyStore.get(DATABASE_KEY_NAME);
  if (stored) return stored;
  if (await options.databaseExists()) {
    throw new MissingDatabaseKeyError('The local database exists but its key is missing from the key store; refusing to open it with a new key (that would hide the data behind an empty database).');
  }
  const key = hex((options.randomBytes ?? secureRandomBytes)(32));
  await options.keyStore.set(DATABASE_KEY_NAME, key);
  return key;
}
