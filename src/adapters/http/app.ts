import { randomUUID } from 'node:crypto';
import { constants as zlib } from 'node:zlib';
import Router, { type RouterMiddleware } from '@koa/router';
import Koa from 'koa';
import compress from 'koa-compress';
import { err } from 'neverthrow';
import type { Logger } from 'pino';
import type { CheckReadiness } from '../../application/check-readiness';
import type { GetSyncStats } from '../../application/get-sync-stats';
import type { Metrics, Principal, SyncLog, SyncLogEntry, SyncType, TokenVerifier } from '../../application/ports';
import type { PullChanges } from '../../application/pull-changes';
import type { PushChanges } from '../../application/push-changes';
import { countRecords, syncError, type SyncError } from '../../domain';
import { readJsonBody } from './body';
import { limiter, type RateLimits } from './rate-limit';
import { sendError, sendJson, sendResult } from './respond';

export interface HttpAppDeps {
  readonly pullChanges: PullChanges;
  readonly pushChanges: PushChanges;
  readonly checkReadiness: CheckReadiness;
  readonly getSyncStats: GetSyncStats;
  readonly tokenVerifier: TokenVerifier;
  readonly syncLog: SyncLog;
  readonly metrics: Metrics;
  readonly maxBodyBytes: number;
  /** Responses at least this large are compressed when the client accepts gzip or brotli. */
  readonly compressAboveBytes: number;
  readonly rateLimits: RateLimits;
  /** Send Strict-Transport-Security (the server, or its proxy, speaks HTTPS). */
  readonly hsts: boolean;
  /** Take the client's IP from X-Forwarded-For (behind a proxy that sets it). */
  readonly trustProxy: boolean;
  /** The OpenAPI document (docs/openapi.yaml, parsed), served as GET /api/openapi.json. */
  readonly openApiDocument: unknown;
  readonly logger: Logger;
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

/** The Koa application: routes, authentication, the error shape of spec §4.5, logs and metrics. */
export function createHttpApp(deps: HttpAppDeps): Koa<State> {
  const app = new Koa<State>();
  app.proxy = deps.trustProxy;
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
  open.get('/metrics', async (ctx) => {
    const { contentType, body } = await metrics.render();
    ctx.type = contentType;
    ctx.body = body;
  });

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
    readonly conflicts: ReadonlyArray<{ table: string; type: string }>;
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
    const body = await readJsonBody(ctx, deps.maxBodyBytes);
    if (body.isErr()) return failSync(ctx, 'push', started, body.error, Number(ctx.get('content-length')) || 0);
    const result = await deps.pushChanges.execute({ userId: ctx.state.principal!.userId, body: body.value.value, schemaVersion: schemaVersionOf(ctx), deviceId });
    if (result.isErr()) return failSync(ctx, 'push', started, result.error, body.value.bytes);
    const bytesOut = sendJson(ctx, 200, result.value);
    // A successful push was valid, so its body has this shape.
    const changes = (body.value.value as { changes: Parameters<typeof countRecords>[0] }).changes;
    recordSync(ctx, 'push', started, { bytesIn: body.value.bytes, bytesOut, recordsByTable: countRecords(changes), conflicts: result.value.conflicts });
  });

  api.get('/admin/sync/stats', authenticate, async (ctx) => {
    sendResult(ctx, await deps.getSyncStats.execute({ principal: ctx.state.principal!, query: ctx.query }), ctx.state.log);
  });

  api.get('/openapi.json', authenticate, (ctx) => void sendJson(ctx, 200, deps.openApiDocument));

  app.use(open.routes());
  app.use(api.routes());
  app.use((ctx) => void sendError(ctx, syncError('NOT_FOUND', `No route ${ctx.method} ${ctx.path}.`)));
  return app;
}
