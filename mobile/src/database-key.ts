/**
 * The key of the encrypted local database (SQLCipher through OP-SQLite's `encryptionKey`) and its
 * lifecycle: created once, on the first run, and kept by the KeyStore; reused by later runs;
 * checked by a read right after the database opens; rotated (rekeyed) without ever leaving the
 * database under a key that is not stored. Two failures are explicit errors, never an empty
 * database: the database exists while its key is gone (`MissingDatabaseKeyError`), and the kept
 * key does not decrypt it (`WrongDatabaseKeyError`). Opening it anyway would look like an empty
 * database, and the app would silently start over, losing every unsynced note.
 */
import { secureRandomBytes, type RandomBytes } from './ids';
import type { KeyStore, SqlDriver } from './ports';

export const DATABASE_KEY_NAME = 'note-sync.database-key';

/** The key store entry of a user's database key (each user's database has its own key); without a user, the one name of before. */
export const databaseKeyName = (userId?: string): string => (userId === undefined ? DATABASE_KEY_NAME : `${DATABASE_KEY_NAME}.${encodeURIComponent(userId)}`);

/**
 * Where `rotateDatabaseKey` keeps the new key while it rekeys: both keys are in the key store
 * until the database is rekeyed and the new key is stored under the key's own name. When the two
 * are equal, no rotation is under way.
 */
export const pendingDatabaseKeyName = (keyName: string): string => `${keyName}.next`;

export class MissingDatabaseKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingDatabaseKeyError';
  }
}

export class WrongDatabaseKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WrongDatabaseKeyError';
  }
}

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
  /** The key's name in the key store (default `databaseKeyName(userId)`); one per database. */
  readonly keyName?: string;
}

export interface RotateDatabaseKeyOptions {
  readonly keyStore: KeyStore;
  readonly randomBytes?: RandomBytes;
  /** The user whose database it is (the key's name is then `databaseKeyName(userId)`). */
  readonly userId?: string;
  /** The name the database's key was opened under (default `databaseKeyName(userId)`). */
  readonly keyName?: string;
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const newKey = (randomBytes: RandomBytes | undefined) => hex((randomBytes ?? secureRandomBytes)(32));

/**
 * One key operation at a time per key name in this process: two first runs at once would both
 * see no key and both create one, and the database would be created under the one that lost.
 * Queued rather than shared, so a caller with another key store still reads its own.
 */
const lanes = new Map<string, Promise<unknown>>();

function oneAtATime<T>(keyName: string, task: () => Promise<T>): Promise<T> {
  const run = (lanes.get(keyName) ?? Promise.resolve()).then(task, task);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  lanes.set(keyName, tail);
  void tail.then(() => {
    if (lanes.get(keyName) === tail) lanes.delete(keyName);
  });
  return run;
}

async function readOrCreateKey(options: DatabaseKeyOptions, name: string): Promise<string> {
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
  await options.keyStore.set(name, newKey(options.randomBytes));
  // Re-read after the write: another process on the device (a background task, an app
  // extension) racing this first run may have stored its key after this one; the key store
  // keeps the last write, so that is the key both must use.
  const kept = await options.keyStore.get(name);
  if (!kept) throw new Error(`The key store did not keep the database key written under "${name}".`);
  return kept;
}

/**
 * The database's key: the one in the key store, or on the first run (no key, no database) a new
 * random 256-bit key, stored before it is returned. `MissingDatabaseKeyError` when the database
 * exists without its key.
 */
export function databaseKey(options: DatabaseKeyOptions): Promise<string> {
  const keyName = options.keyName ?? databaseKeyName(options.userId);
  return oneAtATime(keyName, () => readOrCreateKey(options, keyName));
}

/** SQLite's answer when the key does not decrypt the file (SQLITE_NOTADB), whichever driver words it. */
const NOT_A_DATABASE = /not a database|SQLITE_NOTADB|file is encrypted/i;

async function openAndRead<D extends SqlDriver>(open: (key: string) => D | Promise<D>, key: string): Promise<{ db: D } | { refused: string }> {
  let db: D | undefined;
  try {
    db = await open(key);
    // SQLCipher checks the key only when it reads the first page: read it now, not on the app's first query.
    await db.execute('SELECT count(*) AS n FROM sqlite_master');
    return { db };
  } catch (e) {
    if (db) await db.close().catch(() => undefined);
    const message = e instanceof Error ? e.message : String(e);
    if (NOT_A_DATABASE.test(message)) return { refused: message };
    throw e;
  }
}

/**
 * Opens the encrypted database with its key (`open` hands the key to the driver, e.g. OP-SQLite's
 * `encryptionKey`) and reads from it at once, so a key that does not decrypt it is
 * `WrongDatabaseKeyError` here rather than an empty-looking database later. It also finishes a
 * rotation that was interrupted: when the stored key no longer opens the database but the
 * rotation's new key does, the new key is stored under the key's name and used; when the stored
 * key opens it, the rekey never happened and the new key is forgotten.
 */
export function openEncryptedDatabase<D extends SqlDriver>(open: (key: string) => D | Promise<D>, options: DatabaseKeyOptions): Promise<D> {
  const keyName = options.keyName ?? databaseKeyName(options.userId);
  const pendingName = pendingDatabaseKeyName(keyName);
  return oneAtATime(keyName, async () => {
    const key = await readOrCreateKey(options, keyName);
    const pending = await options.keyStore.get(pendingName);
    const rotating = pending !== null && pending !== '' && pending !== key;
    const opened = await openAndRead(open, key);
    if ('db' in opened) {
      if (rotating) await options.keyStore.set(pendingName, key);
      return opened.db;
    }
    if (rotating) {
      const withPending = await openAndRead(open, pending);
      if ('db' in withPending) {
        await options.keyStore.set(keyName, pending);
        return withPending.db;
      }
    }
    throw new WrongDatabaseKeyError(
      `The local database cannot be read with the key kept under "${keyName}" (${opened.refused}); refusing to treat it as a new database. ` +
        'Its key was replaced or it was encrypted elsewhere: offer the user to sign out and sync again from the server (see docs/security.md).',
    );
  });
}

/**
 * Re-encrypts the open database under a new random key (SQLCipher's `PRAGMA rekey`) and stores
 * that key. Crash-safe: the new key is stored under `pendingDatabaseKeyName(keyName)` before the
 * rekey and under `keyName` after it, so at every point the database is under a key the store
 * holds, and `openEncryptedDatabase` finishes the rotation (or drops it) on the next open.
 * Resolves once both the database and the key store hold the new key.
 */
export function rotateDatabaseKey(db: SqlDriver, options: RotateDatabaseKeyOptions): Promise<void> {
  const keyName = options.keyName ?? databaseKeyName(options.userId);
  return oneAtATime(keyName, async () => {
    const current = await options.keyStore.get(keyName);
    if (!current) throw new MissingDatabaseKeyError(`No database key under "${keyName}" to rotate: open the database with openEncryptedDatabase (or openEncryptedOpSqlite) first.`);
    const next = newKey(options.randomBytes);
    await options.keyStore.set(pendingDatabaseKeyName(keyName), next);
    // A rekey rewrites every page in one transaction of the rollback journal: SQLite3 Multiple
    // Ciphers refuses it in WAL mode, and SQLCipher does it either way. The connection is the
    // driver's only one, so the mode can change here and is put back after.
    const [mode] = await db.execute('SELECT journal_mode FROM pragma_journal_mode');
    const wal = String(mode?.['journal_mode']).toLowerCase() === 'wal';
    if (wal) await db.execute('PRAGMA journal_mode = DELETE');
    try {
      await db.execute(`PRAGMA rekey = '${next}'`);
    } finally {
      if (wal) await db.execute('PRAGMA journal_mode = WAL');
    }
    await options.keyStore.set(keyName, next);
  });
}
