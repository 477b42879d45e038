import type Koa from 'koa';
import { err, ok, type Result } from 'neverthrow';
import getRawBody from 'raw-body';
import { syncError, validationFailed, type SyncError } from '../../domain';

/**
 * Reads a JSON request body of at most `maxBytes`, refusing before reading more than that:
 * 413 over the limit, 400 for anything that is not a JSON document.
 */
export async function readJsonBody(ctx: Koa.Context, maxBytes: number): Promise<Result<unknown, SyncError>> {
  if (!ctx.is('application/json')) {
    return err(validationFailed('Send the body as JSON with "Content-Type: application/json".', [{ column: 'Content-Type', reason: `got ${ctx.get('content-type') || 'none'}` }]));
  }
  const encoding = ctx.get('content-encoding').toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    return err(validationFailed(`Content-Encoding ${encoding} is not accepted.`, [{ column: 'Content-Encoding', reason: 'unsupported' }]));
  }
  let text: string;
  try {
    text = await getRawBody(ctx.req, { limit: maxBytes, encoding: 'utf8', length: ctx.get('content-length') || undefined });
  } catch (e) {
    const type = (e as { type?: string }).type;
    if (type === 'entity.too.large') {
      return err(syncError('PAYLOAD_TOO_LARGE', `The body is over the limit of ${maxBytes} bytes. Split the push into smaller batches.`, { max_bytes: maxBytes }));
    }
    if (type === 'request.aborted') return err(validationFailed('The request body ended early.'));
    return err(validationFailed('The request body could not be read.', [{ reason: type ?? 'unreadable' }]));
  }
  try {
    return ok(JSON.parse(text));
  } catch (e) {
    return err(validationFailed('The body is not valid JSON.', [{ reason: e instanceof Error ? e.message : 'malformed JSON' }]));
  }
}
