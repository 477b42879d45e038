import 'reflect-metadata';
import { Container } from 'inversify';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { JwtTokenVerifier } from '../adapters/crypto/jwt-token-verifier';
import { AesGcmFieldCipher } from '../adapters/crypto/aes-gcm-field-cipher';
import { ParallelFieldCipher } from '../adapters/crypto/parallel-field-cipher';
import { NodeSha256Digest } from '../adapters/crypto/node-digest';
import { createHttpApp } from '../adapters/http/app';
import { LiveHub } from '../adapters/http/live';
import { createLiveFeed } from '../adapters/postgres/notifier';
import { BoundedAlerts, FanOutAlerts, LogAlerts, WebhookAlerts } from '../adapters/observability/alerts';
import { BatchingSyncLog, DEFAULT_BATCHING } from '../adapters/observability/batching-sync-log';
import { PromMetrics } from '../adapters/observability/prom-metrics';
import { KnexChangeStore } from '../adapters/postgres/knex-change-store';
import { openDatabase } from '../adapters/postgres/connection';
import { knexProbes, ReplicaRoutedChangeStore, ReplicaRouter } from '../adapters/postgres/read-replicas';
import { KnexRetentionStore } from '../adapters/postgres/knex-retention-store';
import { KnexSyncLogStore } from '../adapters/postgres/knex-sync-log';
import { CheckReadiness } from '../application/check-readiness';
import { GetRuntime } from '../application/get-runtime';
import { GetSyncSeries } from '../application/get-sync-series';
import { GetSyncStats } from '../application/get-sync-stats';
import {
  TOKENS,
  type Alerts,
  type ChangeStore,
  type Clock,
  type Digest,
  type FieldCipher,
  type LiveFeed,
  type Metrics,
  type RetentionStore,
  type PoolFigures,
  type RuntimeProbe,
  type SyncLog,
  type SyncLogStore,
  type SyncStatsQuery,
  type TokenVerifier,
} from '../application/ports';
import { PullChanges } from '../application/pull-changes';
import { PurgeExpiredData } from '../application/purge-expired-data';
import { PushChanges } from '../application/push-changes';
import type { SyncSettings } from '../application/settings';
import type { AppConfig } from './config';
import { loadOpenApiDocument } from './openapi-document';

export const ROOT = {
  Database: Symbol.for('Database'),
  Logger: Symbol.for('Logger'),
  HttpApp: Symbol.for('HttpApp'),
  LiveHub: Symbol.for('LiveHub'),
  SyncLogTables: Symbol.for('SyncLogTables'),
  /** The ReplicaRouter when DATABASE_READ_URL names hot standbys, else null (server.ts starts and closes it). */
  ReadReplicas: Symbol.for('ReadReplicas'),
} as const;

/** host:port/database of a URL, without its credentials (logs and metrics). */
function replicaName(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5432}${u.pathname}`;
}

export const systemClock: Clock = { now: () => Date.now() };

/** The only place that knows every piece: ports bound to adapters, use cases to their ports. */
export function buildContainer(config: AppConfig, db: Knex, logger: Logger, clock: Clock = systemClock): Container {
  const c = new Container({ defaultScope: 'Singleton' });
  c.bind<Knex>(ROOT.Database).toConstantValue(db);
  c.bind<Logger>(ROOT.Logger).toConstantValue(logger);
  c.bind<Clock>(TOKENS.Clock).toConstantValue(clock);
  c.bind<SyncSettings>(TOKENS.SyncSettings).toConstantValue(config.sync);
  c.bind<Digest>(TOKENS.Digest).toResolvedValue(() => new NodeSha256Digest());
  c.bind<TokenVerifier>(TOKENS.TokenVerifier).toResolvedValue(() => new JwtTokenVerifier(config.jwt));
  c.bind<FieldCipher>(TOKENS.FieldCipher).toResolvedValue(() =>
    config.decryptThreads > 0 ? new ParallelFieldCipher(config.fieldKeys.ring, { threads: config.decryptThreads }) : new AesGcmFieldCipher(config.fieldKeys.ring),
  );
  c.bind<ReplicaRouter | null>(ROOT.ReadReplicas).toResolvedValue(
    (d: Knex, log: Logger) => {
      const { urls, maxLagMs } = config.readReplicas;
      if (urls.length === 0 || config.database.kind !== 'postgres') return null;
      const { poolMax, queryTimeoutMs } = config.database;
      const dbLog = log.child({ component: 'read-replica' });
      const replicas = urls.map((url) => ({
        name: replicaName(url),
        db: openDatabase({ kind: 'postgres', url, poolMax, ...(queryTimeoutMs ? { queryTimeoutMs } : {}) }, { warn: (m) => dbLog.warn(String(m)), error: (m) => dbLog.error(String(m)) }),
      }));
      return new ReplicaRouter(knexProbes(d), replicas, { maxLagMs }, dbLog);
    },
    [ROOT.Database, ROOT.Logger],
  );
  c.bind<ChangeStore>(TOKENS.ChangeStore).toResolvedValue(
    (d: Knex, cipher: FieldCipher, router: ReplicaRouter | null) => {
      const primary = new KnexChangeStore(d, cipher, config.transactionTimeouts);
      if (!router) return primary;
      // Pulls only: the standbys' stores never take a push (ReplicaRoutedChangeStore).
      const replicas = new Map(router.replicaDatabases().map(({ name, db }) => [name, new KnexChangeStore(db, cipher, config.transactionTimeouts)]));
      return new ReplicaRoutedChangeStore(primary, replicas, router);
    },
    [ROOT.Database, TOKENS.FieldCipher, ROOT.ReadReplicas],
  );
  c.bind(TOKENS.PullChanges).toResolvedValue((s: ChangeStore, st: SyncSettings) => new PullChanges(s, st), [TOKENS.ChangeStore, TOKENS.SyncSettings]);
  c.bind(TOKENS.PushChanges).toResolvedValue(
    (s: ChangeStore, cl: Clock, d: Digest, st: SyncSettings) => new PushChanges(s, cl, d, st),
    [TOKENS.ChangeStore, TOKENS.Clock, TOKENS.Digest, TOKENS.SyncSettings],
  );
  c.bind<RetentionStore>(TOKENS.RetentionStore).toResolvedValue((d: Knex) => new KnexRetentionStore(d), [ROOT.Database]);
  c.bind(TOKENS.PurgeExpiredData).toResolvedValue((s: RetentionStore, cl: Clock) => new PurgeExpiredData(s, cl, config.retention), [TOKENS.RetentionStore, TOKENS.Clock]);
  c.bind(TOKENS.CheckReadiness).toResolvedValue((s: ChangeStore, cl: Clock) => new CheckReadiness(s, cl), [TOKENS.ChangeStore, TOKENS.Clock]);

  c.bind<KnexSyncLogStore>(ROOT.SyncLogTables).toResolvedValue((d: Knex) => new KnexSyncLogStore(d), [ROOT.Database]);
  c.bind<SyncLogStore>(TOKENS.SyncLogStore).toResolvedValue((t: KnexSyncLogStore) => t, [ROOT.SyncLogTables]);
  c.bind<SyncStatsQuery>(TOKENS.SyncStatsQuery).toResolvedValue((t: KnexSyncLogStore) => t, [ROOT.SyncLogTables]);
  c.bind<RuntimeProbe>(TOKENS.RuntimeProbe).toResolvedValue(
    (d: Knex) => ({
      pool: (): PoolFigures | null => {
        // knex's tarn pool; absent before the first query and on a driver without one.
        const pool = (d.client as { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number; max: number } }).pool;
        return pool ? { used: pool.numUsed(), free: pool.numFree(), pending: pool.numPendingAcquires(), max: pool.max } : null;
      },
    }),
    [ROOT.Database],
  );
  c.bind<Metrics>(TOKENS.Metrics).toResolvedValue(
    (probe: RuntimeProbe, router: ReplicaRouter | null) =>
      new PromMetrics(
        () => {
          const pool = probe.pool();
          return { used: pool?.used ?? 0, free: pool?.free ?? 0, pending: pool?.pending ?? 0 };
        },
        router ? () => ({ reads: router.reads, replicas: router.states() }) : undefined,
      ),
    [TOKENS.RuntimeProbe, ROOT.ReadReplicas],
  );
  c.bind<Alerts>(TOKENS.Alerts).toResolvedValue(
    (log: Logger) =>
      new BoundedAlerts(
        new FanOutAlerts([new LogAlerts(log), ...(config.alertWebhook ? [new WebhookAlerts({ ...config.alertWebhook, retryDelayMs: 1000 }, log)] : [])]),
        config.alertMaxPerUserPerHour,
        log,
      ),
    [ROOT.Logger],
  );
  c.bind<SyncLog>(TOKENS.SyncLog).toResolvedValue(
    (store: SyncLogStore, alerts: Alerts, metrics: Metrics, log: Logger) => new BatchingSyncLog(store, alerts, metrics, log, { ...DEFAULT_BATCHING, maxQueue: config.syncLogQueueMax }),
    [TOKENS.SyncLogStore, TOKENS.Alerts, TOKENS.Metrics, ROOT.Logger],
  );
  c.bind(TOKENS.GetSyncStats).toResolvedValue((q: SyncStatsQuery, cl: Clock) => new GetSyncStats(q, cl), [TOKENS.SyncStatsQuery, TOKENS.Clock]);
  c.bind(TOKENS.GetSyncSeries).toResolvedValue((q: SyncStatsQuery, cl: Clock) => new GetSyncSeries(q, cl), [TOKENS.SyncStatsQuery, TOKENS.Clock]);
  c.bind(TOKENS.GetRuntime).toResolvedValue((p: RuntimeProbe) => new GetRuntime(p), [TOKENS.RuntimeProbe]);

  c.bind<LiveFeed>(TOKENS.LiveFeed).toResolvedValue((d: Knex, log: Logger) => createLiveFeed(d, log), [ROOT.Database, ROOT.Logger]);
  c.bind<LiveHub>(ROOT.LiveHub).toResolvedValue(
    (feed: LiveFeed, metrics: Metrics, log: Logger) => new LiveHub(feed, metrics, config.live, log),
    [TOKENS.LiveFeed, TOKENS.Metrics, ROOT.Logger],
  );

  const openApiDocument = loadOpenApiDocument();
  c.bind(ROOT.HttpApp).toResolvedValue(
    (
      pullChanges: PullChanges,
      pushChanges: PushChanges,
      checkReadiness: CheckReadiness,
      getSyncStats: GetSyncStats,
      getSyncSeries: GetSyncSeries,
      getRuntime: GetRuntime,
      tokenVerifier: TokenVerifier,
      syncLog: SyncLog,
      metrics: Metrics,
      log: Logger,
      live: LiveHub,
    ) =>
      createHttpApp({
        pullChanges,
        pushChanges,
        checkReadiness,
        getSyncStats,
        getSyncSeries,
        getRuntime,
        tokenVerifier,
        syncLog,
        metrics,
        logger: log,
        maxBodyBytes: config.maxBodyBytes,
        compressAboveBytes: config.compressAboveBytes,
        rateLimits: config.rateLimits,
        hsts: config.tls !== null || config.tlsTerminatedUpstream,
        trustProxyHops: config.trustProxyHops,
        // On the public port only behind its token, and only when it has no listener of its own.
        metricsRoute: config.metrics.port === null && config.metrics.token !== null ? { token: config.metrics.token } : null,
        openApiDocument,
        adminUiDir: config.adminUiDir,
        live,
      }),
    [TOKENS.PullChanges, TOKENS.PushChanges, TOKENS.CheckReadiness, TOKENS.GetSyncStats, TOKENS.GetSyncSeries, TOKENS.GetRuntime, TOKENS.TokenVerifier, TOKENS.SyncLog, TOKENS.Metrics, ROOT.Logger, ROOT.LiveHub],
  );
  return c;
}

/** Releases what a container's singletons hold: writes the queued sync logs, stops the decrypt workers. The database is the caller's. */
export async function disposeContainer(c: Container): Promise<void> {
  await c.get<SyncLog>(TOKENS.SyncLog).flush();
  const cipher = c.get<FieldCipher>(TOKENS.FieldCipher);
  if (cipher instanceof ParallelFieldCipher) await cipher.close();
}
