import type Koa from 'koa';
import type { Result } from 'neverthrow';
import type { Logger } from 'pino';
import { httpStatusOf, type SyncError } from '../../domain';

/** Writes the one error shape of spec §4: `{ "error": { code, message, details? } }`. */
export function sendError(ctx: Koa.Context, error: SyncError): void {
  ctx.status = httpStatusOf(error.code);
  ctx.body = { error: { code: error.code, message: error.message, ...(error.details !== undefined ? { details: error.details } : {}) } };
}

/** Unwraps a use case's Result at the edge: 200 with the value, or the error's status and shape. */
export function sendResult<T>(ctx: Koa.Context, result: Result<T, SyncError>, logger: Logger): void {
  if (result.isOk()) {
    ctx.status = 200;
    ctx.body = result.value;
    return;
  }
  const error = result.error;
  if (httpStatusOf(error.code) >= 500) logger.error({ err: error.cause, code: error.code, path: ctx.path }, error.message);
  sendError(ctx, error);
}
