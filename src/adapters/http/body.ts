import { brotliDecompress, gunzip, type BrotliOptions, type InputType, type ZlibOptions } from 'node:zlib';
import type Koa from 'koa';
import { err, ok, type Result } from 'neverthrow';
import getRawBody from 'raw-body';
import { syncError, validationFailed, type SyncError } from '../../domain';

export type Inflate = (buf: InputType, options: ZlibOptions & BrotliOptions, cb: (error: Error | null, result: Buffer) => void) => void;
// A Map, not an object: a header value like "__proto__" must not find anything.
const INFLATERS = new Map<string, Inflate>([
  ['gzip', gunzip as Inflate],
  ['x-gzip', gunzip as Inflate],
  ['br', brotliDecompress as Inflate],
]);

const tooLarge = (maxBytes: number): SyncError =>
  syncError('PAYLOAD_TOO_LARGE', `The body is over the limit of ${maxBytes} bytes (after decompression). Split the push into smaller batches.`, { max_bytes: maxBytes });

/** Inflates at most `maxBytes`: zlib stops there, so a small bomb never grows past the limit in memory. */
export function inflate(fn: Inflate, data: Buffer, maxBytes: number): Promise<Result<Buffer, SyncError>> {
  return new Promise((resolve) => {
    fn(data, { maxOutputLength: maxBytes + 1 }, (error, result) => {
      if (!error) return resolve(result.length > maxBytes ? err(tooLarge(maxBytes)) : ok(result));
      const code = (error as { code?: string }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) return resolve(err(tooLarge(maxBytes)));
      resolve(err(validationFailed('The compressed body could not be decompressed.', [{ column: 'Content-Encoding', reason: error.message }])));
    });
  });
}

/**
 * Reads a JSON request body of at most `maxBytes`, before and after decompression (gzip or
 * brotli, per Content-Encoding): 413 over the limit, 400 for anything that is not a JSON document.
 * `bytes` is what was actually read off the connection (compressed, when it was), also when the
 * body is refused: never the Content-Length the client declared, which may be anything.
 */
export async function readJsonBody(ctx: Koa.Context, maxBytes: number): Promise<{ bytes: number; body: Result<unknown, SyncError> }> {
  const refuse = (error: SyncError, bytes = 0) => ({ bytes, body: err(error) });
  if (!ctx.is('application/json')) {
    return refuse(validationFailed('Send the body as JSON with "Content-Type: application/json".', [{ column: 'Content-Type', reason: `got ${ctx.get('content-type') || 'none'}` }]));
  }
  const encoding = ctx.get('content-encoding').trim().toLowerCase();
  const inflater = encoding === '' || encoding === 'identity' ? null : INFLATERS.get(encoding);
  if (inflater === undefined) {
    return refuse(validationFailed(`Content-Encoding ${encoding} is not accepted; send gzip, br or none.`, [{ column: 'Content-Encoding', reason: 'unsupported' }]));
  }
  let raw: Buffer;
  try {
    raw = await getRawBody(ctx.req, { limit: maxBytes, length: ctx.get('content-length') || undefined });
  } catch (e) {
    const { type, received } = e as { type?: string; received?: unknown };
    const read = typeof received === 'number' && Number.isSafeInteger(received) ? received : 0;
    if (type === 'entity.too.large') return refuse(tooLarge(maxBytes), read);
    if (type === 'request.aborted') return refuse(validationFailed('The request body ended early.'), read);
    return refuse(validationFailed('The request body could not be read.', [{ reason: type ?? 'unreadable' }]), read);
  }
  const bytes = raw.length;
  if (inflater) {
    const inflated = await inflate(inflater, raw, maxBytes);
    if (inflated.isErr()) return refuse(inflated.error, bytes);
    raw = inflated.value;
  }
  try {
    return { bytes, body: ok(JSON.parse(raw.toString('utf8'))) };
  } catch (e) {
    return refuse(validationFailed('The body is not valid JSON.', [{ reason: e instanceof Error ? e.message : 'malformed JSON' }]), bytes);
  }
}
