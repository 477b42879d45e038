import type Koa from 'koa';
import type { Result } from 'neverthrow';
import type { Logger } from 'pino';
import { httpStatusOf, type SyncError } from '../../domain';

/** Writes a JSON answer already serialized, so its size is known (and it is serialized once). Returns the bytes. */
export function sendJson(ctx: Koa.Context, status: number, value: unknown): number {
  const text = JSON.stringify(value);
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = text;
  return Buffer.byteLength(text);
}

/** Writes the one error shape of spec §4: `{ "error": { code, message, details? } }`. Returns the bytes. */
export function sendError(ctx: Koa.Context, error: SyncError): number {
  const retryAfter = (error.details as { retry_after_seconds?: unknown } | undefined)?.retry_after_seconds;
  if (typeof retryAfter === 'number') ctx.set('Retry-After', String(retryAfter));
  return sendJson(ctx, httpStatusOf(error.code), {
    error: { code: error.code, message: error.message, ...(error.details !== undefined ? { details: error.details } : {}), ...(error.detailsTruncated ? { details_truncated: true } : {}) },
  });
}

/** Unwraps a use case's Result at the edge: 200 with the value, or the error's status and shape. */
export function sendResult<T>(ctx: Koa.Context, result: Result<T, SyncError>, logger: Logger): number {
  if (result.isOk()) return sendJson(ctx, 200, result.value);
  const error = result.error;
  if (httpStatusOf(error.code) >= 500) logger.error({ err: error.cause, code: error.code, path: ctx.path }, error.message);
  return sendError(ctx, error);
}
