import { open } from '@op-engineering/op-sqlite';
import { OpSqliteDriver, type OpSqliteDatabase } from '../../../mobile/src/adapters/op-sqlite-driver';
import { LocalDatabase } from '../../../mobile/src/local-database';
import { migrateLocalDatabase } from '../../../mobile/src/local-schema';
import type { SqlDriver } from '../../../mobile/src/ports';
import { ManualTimers } from '../../fakes/manual-timers';

/** A migrated LocalDatabase on OP-SQLite's Node build, in memory, with hand-driven time and ids. */
export interface LocalFixture {
  readonly driver: SqlDriver;
  readonly timers: ManualTimers;
  readonly local: LocalDatabase;
  /** The sync bookkeeping of a row as stored (deleted rows included), or undefined when there is no row. */
  bookkeeping(table: string, id: string): Promise<{ _changed: string; _status: string; _version: number; last_modified_at: number | null } | undefined>;
}

export function openDriver(location = ':memory:', name = 'local.db'): SqlDriver {
  return new OpSqliteDriver(open({ name, location }) as unknown as OpSqliteDatabase);
}

export async function openLocal(): Promise<LocalFixture> {
  const driver = openDriver();
  await migrateLocalDatabase(driver);
  const timers = new ManualTimers();
  let n = 0;
  const local = new LocalDatabase(driver, timers, () => `gen-${++n}`);
  return {
    driver,
    timers,
    local,
    bookkeeping: async (table, id) => {
      const [row] = await driver.execute(`SELECT _changed, _status, _version, last_modified_at FROM "${table}" WHERE id = ?`, [id]);
      return row as Awaited<ReturnType<LocalFixture['bookkeeping']>>;
    },
  };
}

/** Runs `fn` and returns what it threw (failing the test when it did not throw). */
export async function thrown(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}
