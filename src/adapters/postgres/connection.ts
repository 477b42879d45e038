import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { PGlite } from '@electric-sql/pglite';
import knex, { type Knex } from 'knex';

export type DatabaseTarget =
  | {
      readonly kind: 'postgres';
      readonly url: string;
      readonly poolMax: number;
      readonly searchPath?: string;
      /**
       * Longest wait for a connection, a connect, or one statement's answer (client side: a
       * server-side statement_timeout cannot end a wait on a network that stopped delivering).
       */
      readonly queryTimeoutMs?: number;
    }
  | { readonly kind: 'pglite'; readonly dataDir: string };

type PgLiteClient = new (config: object) => { _query(connection: unknown, obj: unknown): Promise<unknown> };

/**
 * PGlite and its knex client, loaded on first use: on PostgreSQL the server never loads them. Run
 * through tsx (as `npm start` runs), loading PGlite cost the process about 80 MB, as much as all
 * the rest of the server (docs/performance.md §15). Required, not imported: knex-pglite
 * requires PGlite's CommonJS build, and an import would load its ES module build beside it.
 */
let pglite: { PGlite: typeof PGlite; Client: PgLiteClient } | undefined;
function loadPgLite(): { PGlite: typeof PGlite; Client: PgLiteClient } {
  if (pglite) return pglite;
  const require = createRequire(import.meta.url);
  const ClientPgLite = require('knex-pglite') as PgLiteClient;
  /**
   * PGlite runs in this thread and answers through promises alone, so a chain of queries never
   * let the event loop turn: one busy request held back every other request, timer and socket
   * (p95 9.8 s under 200 clients). Each query first waits one turn of the loop (setImmediate: no
   * delay when nothing else is waiting), so concurrent requests take turns: under a load near
   * PGlite's capacity the median rises and the tail falls (docs/performance.md §13).
   */
  class YieldingPgLiteClient extends ClientPgLite {
    override async _query(connection: unknown, obj: unknown): Promise<unknown> {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return super._query(connection, obj);
    }
  }
  pglite = { PGlite: (require('@electric-sql/pglite') as { PGlite: typeof PGlite }).PGlite, Client: YieldingPgLiteClient };
  return pglite;
}

/**
 * Opens the database: a PostgreSQL server through `pg`, or embedded PostgreSQL (PGlite) in this
 * process. Both run the same migrations and the same SQL. PGlite has one connection: a query on
 * the outer instance inside a transaction would wait forever, so stores use only the transaction.
 */
/** Where knex's own warnings go (a dropped connection, a deprecation); by default knex prints them. */
export interface DatabaseLog {
  warn(message: unknown): void;
  error(message: unknown): void;
}

export function openDatabase(target: DatabaseTarget, log?: DatabaseLog): Knex {
  const logOption = log ? { log: { warn: (m: unknown) => log.warn(m), error: (m: unknown) => log.error(m), deprecate: (m: unknown) => log.warn(m), debug: () => undefined } } : {};
  return knex({ ...databaseConfig(target), ...logOption });
}

/** The knex configuration openDatabase uses; knexfile.ts hands it to the knex CLI. */
export function databaseConfig(target: DatabaseTarget): Knex.Config {
  if (target.kind === 'postgres') {
    const timeout = target.queryTimeoutMs;
    return {
      client: timeout ? (timedPgClient() as unknown as typeof knex.Client) : 'pg',
      connection: timeout ? { connectionString: target.url, query_timeout: timeout, connectionTimeoutMillis: timeout } : target.url,
      pool: { min: 0, max: target.poolMax },
      ...(timeout ? { acquireConnectionTimeout: timeout } : {}),
      // Errors name the SQL with placeholders, never the bound values (private notes).
      compileSqlOnError: false,
      ...(target.searchPath ? { searchPath: [target.searchPath] } : {}),
    };
  }
  const inMemory = target.dataDir.startsWith('memory://');
  if (!inMemory) mkdirSync(target.dataDir, { recursive: true });
  const { PGlite: Embedded, Client } = loadPgLite();
  // shared_buffers 16 MB, not PostgreSQL's 128 MB: PGlite's WebAssembly memory never shrinks, and
  // its pages already sit in memory (memory://) or the OS's page cache (a folder), so large
  // buffers held the same data twice. 100-130 MB less resident, reads no slower (docs/performance.md).
  const instance = new Embedded({ ...(inMemory ? {} : { dataDir: target.dataDir }), startParams: [...Embedded.defaultStartParams, '-c', 'shared_buffers=16MB'] });
  return {
    client: Client as unknown as typeof knex.Client,
    dialect: 'postgres',
    compileSqlOnError: false,
    connection: () => ({ pglite: instance }) as object,
  } as Knex.Config;
}

type RawPgConnection = {
  query(...args: unknown[]): unknown;
  connection?: { stream?: { destroy(): void } };
};
type PgDialect = new (config: object) => { _acquireOnlyConnection(): Promise<RawPgConnection> };
let timedClient: PgDialect | undefined;

/**
 * knex's pg client, whose connections are dropped when a statement's answer times out. pg gives
 * up waiting (query_timeout) but keeps the connection, still waiting for that answer behind
 * which every later statement would queue: knex's pool would hand it out again and again. Its
 * socket is destroyed instead, so knex marks it gone and the pool opens a fresh one.
 */
function timedPgClient(): PgDialect {
  if (timedClient) return timedClient;
  const require = createRequire(import.meta.url);
  const PgClient = require('knex/lib/dialects/postgres') as PgDialect;
  const timedOut = (e: unknown) => e instanceof Error && /Query read timeout/.test(e.message);
  class TimedPgClient extends PgClient {
    override async _acquireOnlyConnection(): Promise<RawPgConnection> {
      const connection = await super._acquireOnlyConnection();
      const query = connection.query.bind(connection);
      const drop = (e: unknown) => {
        if (timedOut(e)) connection.connection?.stream?.destroy();
      };
      connection.query = (...args: unknown[]) => {
        const callback = args.at(-1);
        if (typeof callback === 'function') {
          args[args.length - 1] = (e: unknown, result: unknown) => {
            drop(e);
            (callback as (e: unknown, r: unknown) => void)(e, result);
          };
          return query(...args);
        }
        const answer = query(...args);
        if (answer instanceof Promise) answer.catch(drop);
        return answer;
      };
      return connection;
    }
  }
  return (timedClient = TimedPgClient);
}

/** Whether `db` reaches a PostgreSQL server through \`pg\` (false: PGlite, in this process). */
export function usesPgDriver(db: Knex): boolean {
  const client = (db.client as { config?: { client?: unknown } }).config?.client;
  return client === 'pg' || (client !== undefined && client === timedClient);
}

export function describeTarget(target: DatabaseTarget): string {
  if (target.kind === 'pglite') return `embedded PostgreSQL (PGlite) at ${target.dataDir}`;
  const url = new URL(target.url);
  return `PostgreSQL at ${url.hostname}:${url.port || 5432}${url.pathname}`;
}
