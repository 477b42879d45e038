import { syncError, type SyncError } from '../../domain';

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);
/** Deadlock (e.g. a push against another process updating the same row), serialization failure, lock_timeout (55P03) or statement_timeout (57014): retrying succeeds. */
const TRANSIENT = new Set(['40P01', '40001', '55P03', '57014']);

/** Maps a driver failure to the protocol: the cause stays for the log, never for the client. */
// `pg` rejects a query on a connection it already saw die with "Client has encountered a connection
// error and is not queryable" (no code): a push whose backend was terminated can meet that at COMMIT.
export function databaseError(cause: unknown): SyncError {
  // PGlite copies the bound values (note text) into `params`, knex may add `bindings`: neither may reach a log.
  if (cause !== null && typeof cause === 'object') for (const k of ['params', 'bindings']) delete (cause as Record<string, unknown>)[k];
  const code = (cause as { code?: unknown } | null)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  if (typeof code === 'string' && TRANSIENT.has(code)) {
    return { ...syncError('UNAVAILABLE', 'The request collided with another write; retry it.'), cause };
  }
  if ((typeof code === 'string' && UNREACHABLE.has(code)) || /timeout acquiring a connection|Connection terminated|is not queryable|Query read timeout|timeout expired/i.test(message)) {
    return { ...syncError('UNAVAILABLE', 'The database is unavailable; try again shortly.'), cause };
  }
  return { ...syncError('INTERNAL', 'The server failed to process the request.'), cause };
}
