import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import type Koa from 'koa';
import type { Knex } from 'knex';
import { pino, type Logger } from 'pino';
import { describeTarget, openDatabase } from '../adapters/postgres/connection';
import { migrateToLatest } from '../adapters/postgres/migrations';
import { signToken } from '../adapters/crypto/jwt-token-issuer';
import { TOKENS, type Clock } from '../application/ports';
import type { PurgeExpiredData, PurgeReport } from '../application/purge-expired-data';
import { ConfigError, loadConfig, type AppConfig } from './config';
import { buildContainer, disposeContainer, ROOT } from './container';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  /** Runs the retention job now (it also runs every RETENTION_INTERVAL_MINUTES). */
  purgeExpired(): Promise<PurgeReport>;
  /** Stops accepting connections, lets in-flight requests finish, writes the queued sync logs, then closes the database if this server opened it. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Use this database instead of opening one (tests share one); it is then left open on close. */
  readonly db?: Knex;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

export async function startServer(config: AppConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.logLevel });
  const ownDb = options.db === undefined;
  const dbLog = logger.child({ component: 'database' });
  const db = options.db ?? openDatabase(config.database, { warn: (m) => dbLog.warn(String(m)), error: (m) => dbLog.error(String(m)) });
  try {
    const applied = await migrateToLatest(db);
    if (applied.length) logger.info({ migrations: applied }, 'migrations applied');
  } catch (e) {
    if (ownDb) await db.destroy();
    throw e;
  }
  const container = buildContainer(config, db, logger, options.clock);
  const app = container.get<Koa>(ROOT.HttpApp);
  // Koa's default prints to stderr. A client that goes away mid-request (its body cut off) is
  // routine on mobile networks: nothing was written, so it is logged, not shouted.
  app.on('error', (e: Error & { code?: string; type?: string }, ctx?: Koa.Context) => {
    const gone = ctx?.req.destroyed === true || e.type === 'request.aborted' || e.code === 'ECONNRESET' || e.code === 'ECONNABORTED' || (e.code ?? '').startsWith('HPE_');
    if (gone) logger.info({ err: e, path: ctx?.path }, 'client went away mid-request; nothing was written');
    else logger.error({ err: e, path: ctx?.path }, 'unhandled request error');
  });
  const server = config.tls
    ? createHttpsServer({ cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) }, app.callback())
    : createHttpServer(app.callback());
  server.listen(config.port, config.host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const url = `${config.tls ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const purge = container.get<PurgeExpiredData>(TOKENS.PurgeExpiredData);
  let purging: Promise<PurgeReport> | null = null;
  let stopping = false;
  const purgeExpired = () =>
    (purging ??= purge
      .execute(() => stopping)
      .match(
        (report) => {
          if (report.ran && report.tombstones + report.sync_logs + report.sync_conflicts + report.sync_push_receipts > 0) logger.info({ retention: report }, 'retention: purged old data');
          return report;
        },
        (e) => {
          throw Object.assign(new Error(`retention failed: ${e.message}`), { cause: e.cause });
        },
      )
      .finally(() => (purging = null)));
  const retentionTimer =
    config.retention.intervalMs > 0
      ? setInterval(() => purgeExpired().catch((e: unknown) => logger.error({ err: e }, 'retention run failed; it runs again at the next interval')), config.retention.intervalMs).unref()
      : null;
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    purgeExpired,
    close: () =>
      (closing ??= (async () => {
        if (retentionTimer) clearInterval(retentionTimer);
        stopping = true;
        await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
        await purging?.catch(() => undefined);
        await disposeContainer(container);
        if (ownDb) await db.destroy();
      })()),
  };
}

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`Configuration error: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
  const logger = pino({ level: config.logLevel });
  logger.info(`database: ${describeTarget(config.database)}`);
  const running = await startServer(config, { logger });
  console.log(`listening on ${running.url}`);
  if (config.fieldKeys.devKeyFile) {
    logger.warn(`no FIELD_ENCRYPTION_KEYS: private notes are encrypted with the development key in ${config.fieldKeys.devKeyFile} (never do this in production)`);
  }
  if (config.jwt.devSecretFile) {
    logger.warn(`no JWT_SECRET or JWT_PUBLIC_KEY: using the development secret in ${config.jwt.devSecretFile} (never do this in production)`);
    const token = signToken(config.jwt, 'demo-user', { expiresInSeconds: 24 * 3600 });
    console.log(`development token for user "demo-user" (24 h):\n${token}\n`);
    console.log(`try: curl -H "Authorization: Bearer ${token}" "${running.url}/api/sync/pull?last_pulled_at=0"`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: finishing in-flight requests`);
    running.close().then(
      () => process.exit(0),
      (e) => {
        logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
