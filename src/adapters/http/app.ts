import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { constants as zlib } from 'node:zlib';
import Router, { type RouterMiddleware } from '@koa/router';
import Koa from 'koa';
import compress from 'koa-compress';
import { err } from 'neverthrow';
import type { Logger } from 'pino';
import type { CheckReadiness } from '../../application/check-readiness';
import type { GetRuntime } from '../../application/get-runtime';
import type { GetSyncSeries } from '../../application/get-sync-series';
import type { GetSyncStats } from '../../application/get-sync-stats';
import type { Metrics, Principal, SyncLog, SyncLogEntry, SyncType, TokenVerifier } from '../../application/ports';
import type { PullChanges } from '../../application/pull-changes';
import type { PushChanges } from '../../application/push-changes';
import { countConflicts, countRecords, syncError, type SyncError } from '../../domain';
import { adminDashboard } from './admin-dashboard';
import { readJsonBody } from './body';
import type { LiveHub } from './live';
import { limiter, type RateLimits } from './rate-limit';
import { sendError, sendJson, sendResult } from './respond';

export interface HttpAppDeps {
  readonly pullChanges: PullChanges;
  readonly pushChanges: PushChanges;
  readonly checkReadiness: CheckReadiness;
  readonly getSyncStats: GetSyncStats;
  readonly getSyncSeries: GetSyncSeries;
  readonly getRuntime: GetRuntime;
  readonly tokenVerifier: TokenVerifier;
  readonly syncLog: SyncLog;
  readonly metrics: Metrics;
  readonly maxBodyBytes: number;
  /** Responses at least this large are compressed when the client accepts gzip or brotli. */
  readonly compressAboveBytes: number;
  readonly rateLimits: RateLimits;
  /** Send Strict-Transport-Security (the server, or its proxy, speaks HTTPS). */
  readonly hsts: boolean;
  /**
   * Proxies in front that append to X-Forwarded-For (0: ignore the header). Only that many entries
   * from the right are trusted: anything a client wrote before them is not its IP.
   */
  readonly trustProxyHops: number;
  /**
   * GET /metrics on this app: never (null, the public port when metrics have a listener of their
   * own or are off), or to a bearer token (`token`), or to anyone (`token` null: the metrics
   * listener without a token, reachable only where it is bound).
   */
  readonly metricsRoute: { readonly token: string | null } | null;
  /** The OpenAPI document (docs/openapi.yaml, parsed), served as GET /api/openapi.json. */
  readonly openApiDocument: unknown;
  /** Where `npm run build:admin` puts the dashboard's files, served at /admin. */
  readonly adminUiDir: string;
  readonly logger: Logger;
  /** The live channel, GET /api/sync/live (absent: the route answers 404). */
  readonly live?: LiveHub;
}

interface State {
  principal?: Principal;
  requestId: string;
  log: Logger;
}

const DEVICE_ID = /^[\x21-\x7e]{1,128}$/;
const REQUEST_ID = /^[\w.:-]{1,128}$/;
const APP_VERSION = /^[\x20-\x7e]{1,64}$/;

function deviceIdOf(ctx: Koa.Context): string | null | SyncError {
  const raw = ctx.get('x-device-id');
  if (raw === '') return null;
  return DEVICE_ID.test(raw)
    ? raw
    : syncError('VALIDATION_FAILED', 'X-Device-Id must be 1 to 128 printable ASCII characters without spaces.', [{ column: 'X-Device-Id', reason: 'invalid' }]);
}

function schemaVersionOf(ctx: Koa.Context): string | undefined {
  const q = ctx.query['schema_version'];
  if (typeof q === 'string') return q;
  return ctx.get('x-schema-version') || undefined;
}

const digestOf = (s: string) => createHash('sha256').update(s).digest();

/** GET /metrics, to the bearer of `token` when one is set (compared in constant time). */
function metricsHandler(metrics: Metrics, token: string | null): (ctx: Koa.Context) => Promise<void> {
  const expected = token === null ? null : digestOf(token);
  return async (ctx) => {
    if (expected) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(ctx.get('authorization'));
      if (!match || !timingSafeEqual(digestOf(match[1]!), expected)) {
        return void sendError(ctx, syncError(match ? 'TOKEN_INVALID' : 'TOKEN_MISSING', 'Send the metrics token as "Authorization: Bearer <METRICS_TOKEN>".'));
      }
    }
    const { contentType, body } = await metrics.render();
    ctx.type = contentType;
    ctx.body = body;
  };
}

/**
 * The metrics listener's application (METRICS_PORT): GET /metrics and nothing else, so that
 * port never exposes the sync API, however it is bound.
 */
export function createMetricsApp(metrics: Metrics, token: string | null): Koa {
  const app = new Koa();
  const router = new Router();
  router.get('/metrics', metricsHandler(metrics, token));
  app.use(router.routes());
  app.use((ctx) => void sendError(ctx, syncError('NOT_FOUND', `No route ${ctx.method} ${ctx.path}.`)));
  return app;
}

/** The Koa application: routes, authentication, the error shape of spec §4.5, logs and metrics. */
export function createHttpApp(deps: HttpAppDeps): Koa<State> {
  const app = new Koa<State>();
  app.proxy = deps.trustProxyHops > 0;
  // Koa takes the leftmost of the last maxIpsCount entries (0 would trust them all).
  app.maxIpsCount = deps.trustProxyHops;
  const { logger, metrics } = deps;

  // A request id on every log line and answer; defects end here as the error shape, never a stack.
  app.use(async (ctx, next) => {
    const given = ctx.get('x-request-id');
    ctx.state.requestId = REQUEST_ID.test(given) ? given : randomUUID();
    ctx.state.log = logger.child({ reqId: ctx.state.requestId });
    ctx.set('X-Request-Id', ctx.state.requestId);
    if (deps.hsts) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    const started = performance.now();
    try {
      await next();
    } catch (e) {
      ctx.state.log.error({ err: e, method: ctx.method, path: ctx.path }, 'request failed');
      sendError(ctx, syncError('INTERNAL', 'The server failed to process the request.'));
    }
    const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
    metrics.observeRequest(String(route), ctx.method, ctx.status, (performance.now() - started) / 1000);
    ctx.state.log.debug({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - started) }, 'request');
  });

  // Brotli at quality 4 and gzip at level 5: a pull of thousands of rows shrinks several times
  // for a few milliseconds of CPU (brotli's default quality, 11, costs far more than it saves).
  // On a 10,000-row page gzip 5 takes half the time of zlib's default 6 for 6% more bytes; the
  // compression sits on every pull's critical path (docs/performance.md §11).
  app.use(
    compress({
      threshold: deps.compressAboveBytes,
      br: { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } },
      gzip: { level: 5 },
      deflate: false,
    }),
  );

  const open = new Router<State>();
  open.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  open.get('/readyz', async (ctx) => {
    const ready = await deps.checkReadiness.execute();
    if (ready.isErr()) ctx.state.log.warn({ err: ready.error.cause }, 'not ready');
    sendResult(ctx, ready.map(() => ({ status: 'ready' })), ctx.state.log);
  });
  if (deps.metricsRoute) open.get('/metrics', metricsHandler(metrics, deps.metricsRoute.token));

  const api = new Router<State>({ prefix: '/api' });
  // Per route rather than api.use: a router-level middleware would leave its own path in
  // ctx._matchedRoute for a refused request, and the request metric would lose the route.
  const limitIp = limiter(deps.rateLimits.perIpPerMinute);
  const limitUser = limiter(deps.rateLimits.perUserPerMinute);
  const authenticate: RouterMiddleware<State> = async (ctx, next) => {
    // Before the token is even read: a flood of bad tokens costs little.
    if (!(await limitIp(ctx, ctx.ip))) return;
    const header = ctx.get('authorization');
    const bearer = /^Bearer(?:\s+(.*?))?\s*$/i.exec(header);
    const token = bearer?.[1];
    // RFC 6750 §3: a challenge on every 401; an error code only when a token was sent.
    if (!token) {
      ctx.set('WWW-Authenticate', 'Bearer realm="note-sync"');
      return void sendError(ctx, syncError('TOKEN_MISSING', 'Send a token from your identity provider as "Authorization: Bearer <JWT>".'));
    }
    const principal = /^\S+$/.test(token) ? deps.tokenVerifier.verify(token) : err({ ...syncError('TOKEN_INVALID', 'Send one token, as "Authorization: Bearer <JWT>".'), cause: 'more than one word after Bearer' });
    if (principal.isErr()) {
      ctx.state.log.info({ reason: principal.error.cause, code: principal.error.code, path: ctx.path }, 'token refused');
      const description = principal.error.code === 'TOKEN_EXPIRED' ? 'The access token expired' : 'The access token is invalid';
      ctx.set('WWW-Authenticate', `Bearer realm="note-sync", error="invalid_token", error_description="${description}"`);
      return void sendError(ctx, principal.error);
    }
    ctx.state.principal = principal.value;
    if (!(await limitUser(ctx, principal.value.userId))) return;
    await next();
  };

  interface Outcome {
    readonly bytesIn: number;
    readonly bytesOut: number;
    readonly recordsByTable: Record<string, number>;
    readonly conflicts: ReadonlyArray<{ table: string; type: string; resolution: string }>;
    readonly error?: SyncError;
  }
  const clock = () => ({ at: Date.now(), perf: performance.now() });

  /** Records a pull or push in sync_logs and the metrics, and logs one summary line. */
  const recordSync = (ctx: Koa.ParameterizedContext<State>, type: SyncType, started: ReturnType<typeof clock>, outcome: Outcome) => {
    const schemaVersion = Number(schemaVersionOf(ctx));
    const appVersion = ctx.get('x-app-version');
    const device = ctx.get('x-device-id');
    const entry: SyncLogEntry = {
      userId: ctx.state.principal!.userId,
      syncType: type,
      startedAt: started.at,
      completedAt: Date.now(),
      durationMs: performance.now() - started.perf,
      recordsSynced: Object.values(outcome.recordsByTable).reduce((a, b) => a + b, 0),
      recordsByTable: outcome.recordsByTable,
      conflicts: outcome.conflicts.length,
      conflictsByKind: countConflicts(outcome.conflicts),
      bytesIn: outcome.bytesIn,
      bytesOut: outcome.bytesOut,
      status: outcome.error ? 'failure' : 'success',
      errorCode: outcome.error?.code ?? null,
      errorMessage: outcome.error?.message ?? null,
      deviceId: DEVICE_ID.test(device) ? device : null,
      appVersion: APP_VERSION.test(appVersion) ? appVersion : null,
      // sync_logs.schema_version is an int4: a version no server accepts is kept as unknown, not a failed batch.
      schemaVersion: Number.isInteger(schemaVersion) && Math.abs(schemaVersion) <= 2_147_483_647 ? schemaVersion : null,
      requestId: ctx.state.requestId,
    };
    deps.syncLog.record(entry);
    metrics.observeSync(entry, outcome.conflicts);
    ctx.state.log.info(
      { sync: type, user: entry.userId, status: entry.status, ms: Math.round(entry.durationMs), records: entry.recordsSynced, conflicts: entry.conflicts, bytes_in: entry.bytesIn, bytes_out: entry.bytesOut, error_code: entry.errorCode },
      `${type} ${entry.status}`,
    );
  };

  const failSync = (ctx: Koa.ParameterizedContext<State>, type: SyncType, started: ReturnType<typeof clock>, error: SyncError, bytesIn: number) => {
    const bytesOut = sendResult(ctx, err(error), ctx.state.log);
    recordSync(ctx, type, started, { bytesIn, bytesOut, recordsByTable: {}, conflicts: [], error });
  };

  api.get('/sync/pull', authenticate, async (ctx) => {
    const started = clock();
    const deviceId = deviceIdOf(ctx);
    if (deviceId !== null && typeof deviceId === 'object') return failSync(ctx, 'pull', started, deviceId, 0);
    const result = await deps.pullChanges.execute({ userId: ctx.state.principal!.userId, query: ctx.query, schemaVersion: schemaVersionOf(ctx), deviceId });
    if (result.isErr()) return failSync(ctx, 'pull', started, result.error, 0);
    // An operator alert per record the server cannot decrypt (a lost key, a corrupted or tampered
    // value): the device syncs on without it, but only an operator can restore it (docs/operations.md).
    for (const u of result.value.undecryptable ?? []) {
      ctx.state.log.error({ alert: 'undecryptable_record', user_id: ctx.state.principal!.userId, table: u.table, id: u.id }, `a stored record of user ${ctx.state.principal!.userId} cannot be decrypted: ${u.table} ${u.id}`);
    }
    // The cursor ahead of the body, so a client can ask for the next page while this one is
    // still compressed, sent and parsed (docs/protocol.md).
    ctx.set('X-Sync-Timestamp', String(result.value.timestamp));
    ctx.set('X-Sync-Has-More', String(result.value.has_more));
    const bytesOut = sendJson(ctx, 200, result.value);
    recordSync(ctx, 'pull', started, { bytesIn: 0, bytesOut, recordsByTable: countRecords(result.value.changes), conflicts: [] });
  });

  api.post('/sync/push', authenticate, async (ctx) => {
    const started = clock();
    const deviceId = deviceIdOf(ctx);
    if (deviceId !== null && typeof deviceId === 'object') return failSync(ctx, 'push', started, deviceId, 0);
    // bytes_in is what was read, never the declared Content-Length (which a client may forge).
    const { bytes: bytesIn, body } = await readJsonBody(ctx, deps.maxBodyBytes);
    if (body.isErr()) return failSync(ctx, 'push', started, body.error, bytesIn);
    const result = await deps.pushChanges.execute({ userId: ctx.state.principal!.userId, body: body.value, schemaVersion: schemaVersionOf(ctx), deviceId });
    if (result.isErr()) return failSync(ctx, 'push', started, result.error, bytesIn);
    const bytesOut = sendJson(ctx, 200, result.value);
    // A successful push was valid, so its body has this shape.
    const changes = (body.value as { changes: Parameters<typeof countRecords>[0] }).changes;
    recordSync(ctx, 'push', started, { bytesIn, bytesOut, recordsByTable: countRecords(changes), conflicts: result.value.conflicts });
  });

  // Authenticated (and counted by the rate limits) like the sync routes, then held open.
  api.get('/sync/live', authenticate, (ctx) => {
    if (!deps.live) return void sendError(ctx, syncError('NOT_FOUND', 'This server has no live channel.'));
    deps.live.accept(ctx, ctx.state.principal!);
  });

  api.get('/admin/sync/stats', authenticate, async (ctx) => {
    sendResult(ctx, await deps.getSyncStats.execute({ principal: ctx.state.principal!, query: ctx.query }), ctx.state.log);
  });

  api.get('/admin/sync/series', authenticate, async (ctx) => {
    sendResult(ctx, await deps.getSyncSeries.execute({ principal: ctx.state.principal!, query: ctx.query }), ctx.state.log);
  });

  api.get('/admin/runtime', authenticate, async (ctx) => {
    sendResult(ctx, await deps.getRuntime.execute({ principal: ctx.state.principal! }), ctx.state.log);
  });

  // Public, as an API's documentation is (it holds no secret); rate-limited per IP like every /api route.
  api.get('/openapi.json', async (ctx) => {
    if (!(await limitIp(ctx, ctx.ip))) return;
    sendJson(ctx, 200, deps.openApiDocument);
  });

  app.use(adminDashboard(deps.adminUiDir));
  app.use(open.routes());
  app.use(api.routes());
  app.use((ctx) => void sendError(ctx, syncError('NOT_FOUND', `No route ${ctx.method} ${ctx.path}.`)));
  return app;
}
