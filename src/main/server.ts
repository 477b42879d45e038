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
import { createMetricsApp } from '../adapters/http/app';
import { signToken } from '../adapters/crypto/jwt-token-issuer';
import { keyFingerprint } from '../adapters/crypto/aes-gcm-field-cipher';
import type { LiveHub } from '../adapters/http/live';
import { checkKeyFingerprints } from '../adapters/postgres/field-key-fingerprints';
import { TOKENS, type Clock, type LiveFeed, type Metrics } from '../application/ports';
import type { PurgeExpiredData, PurgeReport } from '../application/purge-expired-data';
import { ConfigError, loadConfig, type AppConfig } from './config';
import { buildContainer, disposeContainer, ROOT } from './container';
import type { ReplicaRouter } from '../adapters/postgres/read-replicas';
import { chooseLogFormat, createLogger } from './logger';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  /** Runs the retention job now (it also runs every RETENTION_INTERVAL_MINUTES). */
  purgeExpired(): Promise<PurgeReport>;
  /** The metrics listener (METRICS_PORT), when there is one. */
  readonly metricsUrl?: string;
  /** Stops accepting connections, lets in-flight requests finish, writes the queued sync logs, then closes the database if this server opened it. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Use this database instead of opening one (tests share one); it is then left open on close. */
  readonly db?: Knex;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/**
 * Refuses a key ring that gives a key id another key than the one this database first saw under
 * it: rows encrypted under the first could never be decrypted again.
 */
async function checkFieldKeys(db: Knex, config: AppConfig): Promise<void> {
  const keys = config.fieldKeys.ring.map((k) => ({ id: k.id, fingerprint: keyFingerprint(k.key) }));
  const mismatches = await checkKeyFingerprints(db, keys, Date.now());
  if (mismatches.length === 0) return;
  const ids = mismatches.map((m) => `"${m.id}"`).join(', ');
  const generated = config.fieldKeys.devKeyFile ? ` The key came from ${config.fieldKeys.devKeyFile}, generated on this machine: another replica or an earlier deployment generated another one.` : '';
  throw new ConfigError(
    `FIELD_ENCRYPTION_KEYS gives key id ${ids} a different key than the one this database was written with (fingerprint ${mismatches[0]!.given.slice(0, 12)}…, stored ${mismatches[0]!.stored.slice(0, 12)}…).${generated} ` +
      'Rows encrypted under the stored key could not be decrypted. Configure the original key under that id (a new key needs a new id, first in the ring, then npm run reencrypt).',
  );
}

export async function startServer(config: AppConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.logLevel });
  const ownDb = options.db === undefined;
  const dbLog = logger.child({ component: 'database' });
  const db = options.db ?? openDatabase(config.database, { warn: (m) => dbLog.warn(String(m)), error: (m) => dbLog.error(String(m)) });
  try {
    const applied = await migrateToLatest(db);
    if (applied.length) logger.info({ migrations: applied }, 'migrations applied');
    await checkFieldKeys(db, config);
  } catch (e) {
    if (ownDb) await db.destroy();
    throw e;
  }
  const container = buildContainer(config, db, logger, options.clock);
  const app = container.get<Koa>(ROOT.HttpApp);
  const live = container.get<LiveHub>(ROOT.LiveHub);
  const feed = container.get<LiveFeed>(TOKENS.LiveFeed);
  await feed.start();
  // A first check of the read replicas (each bounded in time), so healthy ones serve from the first pull.
  const replicas = container.get<ReplicaRouter | null>(ROOT.ReadReplicas);
  await replicas?.start();
  // Pushes this process hears of (from any process): a pull is not answered from a standby that lacks them.
  const unfollow = replicas ? feed.subscribe((e) => e.kind === 'mark' && replicas.noteMark(e.userId, e.mark)) : null;
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
  // Metrics on a listener of their own (plain HTTP, for a scraper on the host or its network).
  let metricsServer: ReturnType<typeof createHttpServer> | undefined;
  let metricsUrl: string | undefined;
  if (config.metrics.port !== null) {
    metricsServer = createHttpServer(createMetricsApp(container.get<Metrics>(TOKENS.Metrics), config.metrics.token).callback());
    metricsServer.listen(config.metrics.port, config.metrics.host);
    try {
      await once(metricsServer, 'listening');
    } catch (e) {
      server.close();
      await replicas?.close();
      if (ownDb) await db.destroy();
      throw e;
    }
    const { host } = config.metrics;
    metricsUrl = `http://${host.includes(':') ? `[${host}]` : host}:${(metricsServer.address() as AddressInfo).port}`;
  }
  const purge = container.get<PurgeExpiredData>(TOKENS.PurgeExpiredData);
  let purging: Promise<PurgeReport> | null = null;
  let stopping = false;
  const purgeExpired = () =>
    (purging ??= purge
      .execute(() => stopping)
      .match(
        (report) => {
          if (report.ran && report.tombstones + report.sync_logs + report.sync_conflicts + report.sync_push_receipts + report.sync_stats > 0) logger.info({ retention: report }, 'retention: purged old data');
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
    ...(metricsUrl ? { metricsUrl } : {}),
    purgeExpired,
    close: () =>
      (closing ??= (async () => {
        if (retentionTimer) clearInterval(retentionTimer);
        stopping = true;
        const metricsClosed = metricsServer ? new Promise<void>((resolve) => metricsServer.close(() => resolve())) : Promise.resolve();
        metricsServer?.closeAllConnections();
        const stopped = new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
        // Live channels never end by themselves: each is told SHUTTING_DOWN and closed, so the
        // server's close (which waits for every connection) can complete.
        await live.closeAll();
        await stopped;
        await metricsClosed;
        await feed.close();
        await purging?.catch(() => undefined);
        await disposeContainer(container);
        unfollow?.();
        await replicas?.close();
        if (ownDb) await db.destroy();
      })()),
  };
}

async function main(): Promise<void> {
  const production = process.env['NODE_ENV'] === 'production';
  let config: AppConfig;
  let logger: Logger;
  try {
    const format = chooseLogFormat({ production, isTTY: process.stdout.isTTY === true, override: process.env['LOG_FORMAT'] });
    config = loadConfig();
    logger = await createLogger(config.logLevel, format);
  } catch (e) {
    if (e instanceof ConfigError) {
      // Before the logger exists: in production still one JSON line, as a log collector expects.
      if (production) pino().fatal(`Configuration error: ${e.message}`);
      else console.error(`Configuration error: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
  logger.info(`database: ${describeTarget(config.database)}`);
  let running: RunningServer;
  try {
    running = await startServer(config, { logger });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`Configuration error: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
  // Production: JSON lines only. Development: a plain line, shown whatever LOG_LEVEL says.
  if (config.production) logger.info({ url: running.url, ...(running.metricsUrl ? { metrics: `${running.metricsUrl}/metrics` } : {}) }, `listening on ${running.url}`);
  else {
    console.log(`listening on ${running.url}`);
    if (running.metricsUrl) console.log(`metrics on ${running.metricsUrl}/metrics`);
  }
  if (!running.metricsUrl && config.metrics.token === null) logger.info('metrics are off: set METRICS_PORT (a listener on 127.0.0.1) or METRICS_TOKEN (docs/operations.md)');
  if (config.fieldKeys.devKeyFile) {
    logger.warn(`no FIELD_ENCRYPTION_KEYS: private notes are encrypted with the development key in ${config.fieldKeys.devKeyFile} (never do this in production)`);
  }
  if (config.jwt.devSecretFile) {
    // Development only (production refuses to start without a key), so plain lines a developer can copy.
    logger.warn(`no JWT_SECRET or JWT_PUBLIC_KEY: using the development secret in ${config.jwt.devSecretFile} (never do this in production)`);
    const token = signToken(config.jwt, 'demo-user', { expiresInSeconds: 24 * 3600 });
    console.log(`development token for user "demo-user" (24 h):\n${token}\n`);
    console.log(`try: curl -H "Authorization: Bearer ${token}" "${running.url}/api/sync/pull?last_pulled_at=0"`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    logger.info(`${signal}: finishing in-flight requests`);
    running.close().then(
      () => {
        logger.info({ ms: Date.now() - started }, 'shutdown complete');
        logger.flush();
        process.exit(0);
      },
      (e) => {
        logger.error({ err: e }, 'shutdown failed');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    // A start-up failure (the database unreachable, the port taken): JSON in production too.
    if (process.env['NODE_ENV'] === 'production') pino().fatal({ err: e }, `start-up failed: ${e instanceof Error ? e.message : String(e)}`);
    else console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
