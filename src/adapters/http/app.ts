import { constants as zlib } from 'node:zlib';
import Router from '@koa/router';
import Koa from 'koa';
import compress from 'koa-compress';
import type { Logger } from 'pino';
import type { CheckReadiness } from '../../application/check-readiness';
import type { Principal, TokenVerifier } from '../../application/ports';
import type { PullChanges } from '../../application/pull-changes';
import type { PushChanges } from '../../application/push-changes';
import { syncError, type SyncError } from '../../domain';
import { readJsonBody } from './body';
import { sendError, sendResult } from './respond';

export interface HttpAppDeps {
  readonly pullChanges: PullChanges;
  readonly pushChanges: PushChanges;
  readonly checkReadiness: CheckReadiness;
  readonly tokenVerifier: TokenVerifier;
  readonly maxBodyBytes: number;
  /** Responses at least this large are compressed when the client accepts gzip or brotli. */
  readonly compressAboveBytes: number;
  readonly logger: Logger;
}

interface State {
  principal?: Principal;
}

const DEVICE_ID = /^[\x21-\x7e]{1,128}$/;

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

/** The Koa application: routes, authentication and the error shape of spec §4.5. */
export function createHttpApp(deps: HttpAppDeps): Koa<State> {
  const app = new Koa<State>();
  app.proxy = false;
  const { logger } = deps;

  // Defects end here: the client gets the error shape, never a stack or a SQL message.
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (e) {
      logger.error({ err: e, method: ctx.method, path: ctx.path }, 'request failed');
      sendError(ctx, syncError('INTERNAL', 'The server failed to process the request.'));
    }
  });

  // Brotli at quality 4 and gzip at level 6: a pull of thousands of rows shrinks several times
  // for a few milliseconds of CPU (brotli's default quality, 11, costs far more than it saves).
  app.use(
    compress({
      threshold: deps.compressAboveBytes,
      br: { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } },
      gzip: { level: 6 },
      deflate: false,
    }),
  );

  const open = new Router();
  open.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  open.get('/readyz', async (ctx) => {
    const ready = await deps.checkReadiness.execute();
    if (ready.isErr()) logger.warn({ err: ready.error.cause }, 'not ready');
    sendResult(ctx, ready.map(() => ({ status: 'ready' })), logger);
  });

  const api = new Router<State>({ prefix: '/api' });
  api.use(async (ctx, next) => {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return sendError(ctx, syncError('UNAUTHENTICATED', 'Send a token as "Authorization: Bearer <JWT>".'));
    const principal = deps.tokenVerifier.verify(match[1]!);
    if (principal.isErr()) {
      logger.info({ reason: principal.error.cause, path: ctx.path }, 'token refused');
      return sendError(ctx, principal.error);
    }
    ctx.state.principal = principal.value;
    await next();
  });

  api.get('/sync/pull', async (ctx) => {
    const deviceId = deviceIdOf(ctx);
    if (deviceId !== null && typeof deviceId === 'object') return sendError(ctx, deviceId);
    const result = await deps.pullChanges.execute({
      userId: ctx.state.principal!.userId,
      query: ctx.query,
      schemaVersion: schemaVersionOf(ctx),
      deviceId,
    });
    sendResult(ctx, result, logger);
  });

  api.post('/sync/push', async (ctx) => {
    const deviceId = deviceIdOf(ctx);
    if (deviceId !== null && typeof deviceId === 'object') return sendError(ctx, deviceId);
    const body = await readJsonBody(ctx, deps.maxBodyBytes);
    if (body.isErr()) return sendError(ctx, body.error);
    const result = await deps.pushChanges.execute({
      userId: ctx.state.principal!.userId,
      body: body.value,
      schemaVersion: schemaVersionOf(ctx),
      deviceId,
    });
    sendResult(ctx, result, logger);
  });

  app.use(open.routes());
  app.use(api.routes());
  app.use((ctx) => sendError(ctx, syncError('NOT_FOUND', `No route ${ctx.method} ${ctx.path}.`)));
  return app;
}
