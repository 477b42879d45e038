import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import knex, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';

export type DatabaseTarget =
  | { readonly kind: 'postgres'; readonly url: string; readonly poolMax: number; readonly searchPath?: string }
  | { readonly kind: 'pglite'; readonly dataDir: string };

/**
 * PGlite runs in this thread and answers through promises alone, so a chain of queries never
 * let the event loop turn: one busy request held back every other request, timer and socket
 * (p95 9.8 s under 200 clients). Each query first waits one turn of the loop (setImmediate: no
 * delay when nothing else is waiting), so concurrent requests take turns: under a load near
 * PGlite's capacity the median rises and the tail falls (docs/performance.md, fix 13).
 */
class YieldingPgLiteClient extends (ClientPgLite as unknown as new (config: object) => { _query(connection: unknown, obj: unknown): Promise<unknown> }) {
  override async _query(connection: unknown, obj: unknown): Promise<unknown> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    return super._query(connection, obj);
  }
}

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
    client: YieldingPgLiteClient as unknown as typeof knex.Client,
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
