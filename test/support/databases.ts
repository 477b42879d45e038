import type { Knex } from 'knex';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { migrateToLatest } from '../../src/adapters/postgres/migrations';

/**
 * The real databases every integration suite runs against: PGlite always, and the PostgreSQL
 * server at DATABASE_URL when it is set. Each is opened once per test run (PGlite costs a second
 * and a gigabyte) and emptied between tests. On PostgreSQL the run gets its own schema, so a
 * developer's data at DATABASE_URL is never touched.
 */

export type DatabaseName = 'pglite' | 'postgres';

export interface TestDatabase {
  readonly name: DatabaseName;
  readonly db: Knex;
  /** Empties every table. */
  reset(): Promise<void>;
  /** Opens a second, independent connection pool on the same database (PostgreSQL only; 20 connections unless told). */
  openAnother?(poolMax?: number): Knex;
}

const TABLES = ['captures', 'todos', 'thoughts', 'ideas', 'projects', 'sync_users', 'sync_conflicts', 'sync_push_receipts', 'sync_logs', 'sync_failure_streaks', 'sync_field_keys', 'sync_stats_minutes', 'sync_stats_durations', 'sync_stats_tables', 'sync_stats_conflicts'];
const opened = new Map<DatabaseName, Promise<TestDatabase>>();
const schema = `sync_test_${process.pid}_${Date.now().toString(36)}`;

export function databaseNames(): DatabaseName[] {
  return process.env['DATABASE_URL'] ? ['pglite', 'postgres'] : ['pglite'];
}

async function open(name: DatabaseName): Promise<TestDatabase> {
  let db: Knex;
  let openAnother: ((poolMax?: number) => Knex) | undefined;
  if (name === 'postgres') {
    const url = process.env['DATABASE_URL']!;
    const admin = openDatabase({ kind: 'postgres', url, poolMax: 1 });
    await admin.raw(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await admin.destroy();
    openAnother = (poolMax = 20) => openDatabase({ kind: 'postgres', url, poolMax, searchPath: schema });
    db = openAnother();
  } else {
    db = openDatabase({ kind: 'pglite', dataDir: 'memory://' });
  }
  await migrateToLatest(db);
  return {
    name,
    db,
    reset: async () => {
      await db.raw(`TRUNCATE ${TABLES.join(', ')}`);
    },
    ...(openAnother ? { openAnother } : {}),
  };
}

export function getDatabase(name: DatabaseName): Promise<TestDatabase> {
  let p = opened.get(name);
  if (!p) opened.set(name, (p = open(name)));
  return p;
}

export async function closeDatabases(): Promise<void> {
  for (const [name, p] of opened) {
    const { db } = await p;
    if (name === 'postgres') await db.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.destroy();
  }
  opened.clear();
}

/**
 * Declares a suite once per database. `ctx.database` is ready inside hooks and tests, and every
 * table is empty at the start of each test. `name` lets a suite declare a test for one database only.
 */
export function describeEachDatabase(title: string, body: (ctx: { readonly database: TestDatabase }, name: DatabaseName) => void): void {
  for (const name of databaseNames()) {
    describe(`${title} [${name}]`, function () {
      const ctx = {} as { database: TestDatabase };
      before(async function () {
        this.timeout(60_000);
        ctx.database = await getDatabase(name);
      });
      beforeEach(async () => {
        await ctx.database.reset();
      });
      body(ctx, name);
    });
  }
}
