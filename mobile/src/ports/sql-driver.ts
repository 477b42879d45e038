export type SqlValue = string | number | null;
export type SqlRow = Record<string, unknown>;

export interface SqlExecutor {
  /** Runs one statement. Only statements starting with SELECT return rows (OP-SQLite's Node build reads no others). */
  execute(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]>;
  /**
   * Runs one statement that returns no rows once per parameter set, in order, as that many
   * `execute` calls would, but prepared once (OP-SQLite prepares every `execute` anew). Stops at
   * the first failure and rejects with it; the sets run before it stay applied, as with `execute`.
   */
  executeMany(sql: string, paramSets: ReadonlyArray<readonly SqlValue[]>): Promise<void>;
}

/**
 * The local SQLite database, as the sync client needs it. Contract
 * (test/contract/sql-driver.contract.ts):
 * - `transaction` is atomic: all its statements commit, or none when `fn` throws;
 * - nothing else runs while a transaction is open: statements issued outside it wait their turn
 *   (so an app write can never land inside, or be rolled back with, a sync transaction);
 * - statements run in the order they were issued.
 */
export interface SqlDriver extends SqlExecutor {
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
