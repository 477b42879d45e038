import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import knex, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';

export type DatabaseTarget =
  | { readonly kind: 'postgres'; readonly url: string; readonly poolMax: number; readonly searchPath?: string }
  | { readonly kind: 'pglite'; readonly dataDir: string };

/**
 * Opens the database: a PostgreSQL server through `pg`, or embedded PostgreSQL (PGlite) in this
 * process. Both run the same migrations and the same SQL. PGlite has one connection: a query on
 * the outer instance inside a transaction would wait forever, so stores use only the transaction.
 */
export function openDatabase(target: DatabaseTarget): Knex {
  if (target.kind === 'postgres') {
    return knex({
      client: 'pg',
      connection: target.url,
      pool: { min: 0, max: target.poolMax },
      // Errors name the SQL with placeholders, never the bound values (private notes).
      compileSqlOnError: false,
      ...(target.searchPath ? { searchPath: [target.searchPath] } : {}),
    });
  }
  const inMemory = target.dataDir.startsWith('memory://');
  if (!inMemory) mkdirSync(target.dataDir, { recursive: true });
  const pglite = new PGlite(inMemory ? undefined : target.dataDir);
  return knex({
    client: ClientPgLite as unknown as typeof knex.Client,
    dialect: 'postgres',
    compileSqlOnError: false,
    connection: () => ({ pglite }) as object,
  } as Knex.Config);
}

export function describeTarget(target: DatabaseTarget): string {
  if (target.kind === 'pglite') return `embedded PostgreSQL (PGlite) at ${target.dataDir}`;
  const url = new URL(target.url);
  return `PostgreSQL at ${url.hostname}:${url.port || 5432}${url.pathname}`;
}
