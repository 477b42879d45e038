import { openEncryptedDatabase, type DatabaseKeyOptions } from '../database-key';
import type { SqlDriver, SqlExecutor, SqlRow, SqlValue } from '../ports';

/** The part of an OP-SQLite database (`open()` from `@op-engineering/op-sqlite`) this driver uses. */
export interface OpSqliteDatabase {
  execute(sql: string, params?: SqlValue[]): Promise<{ rows?: SqlRow[] | { _array?: SqlRow[] } }>;
  prepareStatement(sql: string): OpSqlitePreparedStatement;
  close(): void;
}

/** OP-SQLite's prepared statement: each `execute` runs it with the values last bound, then resets it. */
export interface OpSqlitePreparedStatement {
  bindSync(params: SqlValue[]): void;
  execute(): Promise<unknown>;
}

/**
 * SqlDriver over OP-SQLite. Statements and transactions go through one queue: OP-SQLite's
 * transaction is BEGIN … COMMIT on the single connection, so a statement issued from elsewhere
 * while it awaits would otherwise run inside it.
 */
export class OpSqliteDriver implements SqlDriver {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly db: OpSqliteDatabase) {}

  private run(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> {
    return this.db.execute(sql, params ? [...params] : undefined).then((r) => {
      const rows = r.rows;
      return Array.isArray(rows) ? rows : (rows?._array ?? []);
    });
  }

  /**
   * One statement prepared here and run once per set. Not kept past the call: OP-SQLite finalizes
   * a statement when its object is collected, so nothing outlives the connection's use of it.
   */
  private async runMany(sql: string, paramSets: ReadonlyArray<readonly SqlValue[]>): Promise<void> {
    if (paramSets.length === 0) return;
    const statement = this.db.prepareStatement(sql);
    for (const params of paramSets) {
      statement.bindSync([...params]);
      await statement.execute();
    }
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the local database is closed'));
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  execute(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> {
    return this.enqueue(() => this.run(sql, params));
  }

  executeMany(sql: string, paramSets: ReadonlyArray<readonly SqlValue[]>): Promise<void> {
    return this.enqueue(() => this.runMany(sql, paramSets));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.enqueue(async () => {
      await this.run('BEGIN IMMEDIATE');
      try {
        const result = await fn({ execute: (sql, params) => this.run(sql, params), executeMany: (sql, sets) => this.runMany(sql, sets) });
        await this.run('COMMIT');
        return result;
      } catch (e) {
        await this.run('ROLLBACK');
        throw e;
      }
    });
  }

  /** Statements already issued still run; any issued from now on is refused (not sent to a closed connection). */
  async close(): Promise<void> {
    if (this.closed) return;
    const closing = this.enqueue(async () => this.db.close());
    this.closed = true;
    await closing;
  }
}

/** OP-SQLite's `open`, as the encrypted opener needs it. */
export type OpSqliteOpen = (options: { name: string; location?: string; encryptionKey?: string }) => OpSqliteDatabase;

/**
 * Opens the local database encrypted with SQLCipher (op-sqlite built with `"sqlcipher": true`)
 * through the key lifecycle of `openEncryptedDatabase`: the key is created on the first run and
 * reused after, a read right after opening turns a key that does not decrypt the file into
 * `WrongDatabaseKeyError`, a database without its key is `MissingDatabaseKeyError`, and an
 * interrupted `rotateDatabaseKey` is finished. Rotate the key with `rotateDatabaseKey(driver, …)`.
 */
export function openEncryptedOpSqlite(open: OpSqliteOpen, options: { name: string; location?: string } & DatabaseKeyOptions): Promise<OpSqliteDriver> {
  return openEncryptedDatabase((encryptionKey) => new OpSqliteDriver(open({ name: options.name, ...(options.location ? { location: options.location } : {}), encryptionKey })), options);
}
