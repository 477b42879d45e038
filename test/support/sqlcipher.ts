/**
 * OP-SQLite's SQLCipher build, in Node. OP-SQLite's own Node build ignores `encryptionKey`, so
 * the phone's encryption cannot be exercised with it. This is OP-SQLite's API (`open`, and the
 * database object `OpSqliteDriver` drives) over better-sqlite3-multiple-ciphers in its SQLCipher
 * mode (`cipher=sqlcipher`, `legacy=4`: SQLCipher 4's file format, as op-sqlite's SQLCipher
 * builds write it), the key given as SQLCipher's passphrase (`PRAGMA key`), as OP-SQLite hands
 * `encryptionKey` to SQLCipher. It behaves like OP-SQLite's Node build otherwise: rows only for
 * SELECT, errors as `SQL Error: …`. `new OpSqliteDriver(openSqlCipher(…))` is the SqlDriver the
 * SQLCipher tests run (test/contract/sqlcipher-driver.test.ts), and `openSqlCipher` is the `open`
 * they hand to `openEncryptedOpSqlite`, so the shipped opener and driver run on real SQLCipher
 * files. Test support only: the mobile package never depends on it.
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { join } from 'node:path';
import { OpSqliteDriver, type OpSqliteDatabase, type OpSqliteOpen, type OpSqlitePreparedStatement } from '../../mobile/src/adapters/op-sqlite-driver';
import type { SqlRow, SqlValue } from '../../mobile/src/ports';

const isSelect = (sql: string) => sql.trim().toUpperCase().startsWith('SELECT');
const quoted = (s: string) => `'${s.replaceAll("'", "''")}'`;

function wrapped<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    // OP-SQLite's wording (its Node build says `SQL Error: <sqlite message>`), code kept.
    const error = new Error(`SQL Error: ${(e as Error).message}`);
    Object.assign(error, { code: (e as { code?: string }).code });
    throw error;
  }
}

export class SqlCipherDatabase implements OpSqliteDatabase {
  private readonly db: Database.Database;

  constructor(readonly path: string, encryptionKey?: string) {
    this.db = new Database(path);
    if (encryptionKey !== undefined) {
      // Setting the key reads nothing: a wrong key shows at the first read, as with SQLCipher.
      this.db.pragma(`cipher = 'sqlcipher'`);
      this.db.pragma('legacy = 4');
      this.db.pragma(`key = ${quoted(encryptionKey)}`);
    }
  }

  private run(sql: string, params: readonly SqlValue[]): SqlRow[] {
    return wrapped(() => {
      const statement = this.db.prepare(sql);
      if (isSelect(sql)) return statement.all(...params) as SqlRow[];
      statement.run(...params);
      return [];
    });
  }

  async execute(sql: string, params?: SqlValue[]): Promise<{ rows: SqlRow[] }> {
    return { rows: this.run(sql, params ?? []) };
  }

  prepareStatement(sql: string): OpSqlitePreparedStatement {
    const statement = wrapped(() => this.db.prepare(sql));
    let bound: SqlValue[] = [];
    return {
      bindSync: (params) => void (bound = [...params]),
      execute: async () => wrapped(() => (isSelect(sql) ? statement.all(...bound) : statement.run(...bound))),
    };
  }

  close(): void {
    this.db.close();
  }
}

/** OP-SQLite's `open` for its SQLCipher build: the file `name` in the folder `location`. */
export const openSqlCipher: OpSqliteOpen = ({ name, location, encryptionKey }) => {
  if (!location) throw new Error('openSqlCipher: pass the folder as location');
  return new SqlCipherDatabase(join(location, name), encryptionKey);
};

/** An SqlDriver over a SQLCipher file, keyed with `key` (passphrase), without the key lifecycle. */
export const openSqlCipherDriver = (path: string, key: string): OpSqliteDriver => new OpSqliteDriver(new SqlCipherDatabase(path, key));
