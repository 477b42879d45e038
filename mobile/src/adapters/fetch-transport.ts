import { err, ok, type Result } from 'neverthrow';
import { gzipSync, strToU8 } from 'fflate';
import {
  errorResponseSchema,
  failureFromStatus,
  networkFailure,
  pullResponseSchema,
  pushResponseSchema,
  timeoutFailure,
  type ErrorDetail,
  type PullResponseBody,
  type PushResponseBody,
  type SyncErrorCode,
  utf8Length,
  type WireSchema,
} from '../../../src/domain';
import { WrongUserError } from '../identity';
import type { PullHead, PullParams, PushBody, SyncTransport, TransportFailure } from '../ports';
import { TokenSource, type GetToken } from '../token-source';

export type { GetToken } from '../token-source';

export interface FetchTransportOptions {
  /** e.g. https://sync.example.com (no trailing slash needed). */
  readonly baseUrl: string;
  /**
   * The current access token; called before every request, so a refreshed token is picked up.
   * After a 401 it is called once with `{ forceRefresh: true }`: return a fresh token (from your
   * identity provider's refresh), and the request is sent again with it (docs/mobile.md, "Tokens").
   */
  readonly getToken: GetToken;
  readonly deviceId: string;
  readonly schemaVersion?: number;
  readonly timeoutMs?: number;
  /** Injected for certificate pinning or tests; defaults to the global fetch. */
  readonly fetch?: typeof fetch;
  /** Push bodies this large or larger go gzip-compressed (default 1024; Infinity never compresses). */
  readonly compressAboveBytes?: number;
  /**
   * Hears the size of each exchange: bytes sent (as sent, compressed or not) and received (the
   * Content-Length when the server gave one, which is the compressed size; else the body's size).
   */
  readonly onTraffic?: (traffic: { bytesSent: number; bytesReceived: number }) => void;
}

const noToken = (e: unknown): TransportFailure =>
  e instanceof WrongUserError ? e.failure : { kind: 'AUTH_ERROR', retryable: false, message: `no token: ${e instanceof Error ? e.message : String(e)}` };

/** SyncTransport over `fetch`, with a timeout, the bearer token and the device id on every request. */
export class FetchSyncTransport implements SyncTransport {
  private readonly baseUrl: string;
  private readonly tokens: TokenSource;

  constructor(private readonly options: FetchTransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.tokens = new TokenSource(options.getToken);
  }

  pull(params: PullParams): Promise<Result<PullResponseBody, TransportFailure>> {
    const query = queryString({
      last_pulled_at: String(params.lastPulledAt ?? 0),
      tables: params.tables.join(','),
      limit: params.limit === undefined ? undefined : String(params.limit),
      schema_version: this.options.schemaVersion === undefined ? undefined : String(this.options.schemaVersion),
      migration: params.migration === undefined ? undefined : JSON.stringify(params.migration),
    });
    const onHead = params.onHead;
    const tellHead = onHead
      ? (headers: Headers) => {
          const head = pullHeadOf(headers);
          if (head) onHead(head);
        }
      : undefined;
    return this.request(`/api/sync/pull?${query}`, { method: 'GET' }, pullResponseSchema, params.suppressEcho !== false, tellHead) as Promise<Result<PullResponseBody, TransportFailure>>;
  }

  push(body: PushBody): Promise<Result<PushResponseBody, TransportFailure>> {
    const json = JSON.stringify(body);
    // Pulls come back compressed by the platform's fetch (it sends Accept-Encoding and inflates);
    // pushes are compressed here, as no fetch does that for a request body.
    const compress = json.length >= (this.options.compressAboveBytes ?? 1024);
    const init: RequestInit = compress
      ? { method: 'POST', body: gzipSync(strToU8(json)), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }
      : { method: 'POST', body: json, headers: { 'content-type': 'application/json' } };
    return this.request('/api/sync/push', init, pushResponseSchema);
  }

  /**
   * `onHeaders` hears a 200 answer's headers as they arrive, before its body is read. A 401 is
   * answered once with a refreshed token; a second 401 is the failure (AUTH_ERROR with the
   * server's code: TOKEN_EXPIRED, TOKEN_INVALID or TOKEN_MISSING).
   */
  private async request<T>(path: string, init: RequestInit, schema: WireSchema<T>, sendDeviceId = true, onHeaders?: (headers: Headers) => void): Promise<Result<T, TransportFailure>> {
    let token: string;
    try {
      token = await this.tokens.current();
    } catch (e) {
      return err(noToken(e));
    }
    const first = await this.send(token, path, init, schema, sendDeviceId, onHeaders);
    if (first.isOk() || first.error.status !== 401) return first;
    try {
      token = await this.tokens.refresh(token);
    } catch (e) {
      return err(noToken(e));
    }
    return this.send(token, path, init, schema, sendDeviceId, onHeaders);
  }

  private async send<T>(token: string, path: string, init: RequestInit, schema: WireSchema<T>, sendDeviceId: boolean, onHeaders?: (headers: Headers) => void): Promise<Result<T, TransportFailure>> {
    const doFetch = this.options.fetch ?? globalThis.fetch;
    // The timeout does not depend on AbortController: the deadline settles the request either way;
    // where the engine has AbortController (React Native has), the request is also cancelled.
    const controller = typeof AbortController === 'function' ? new AbortController() : undefined;
    let timedOut = false;
    let expire: (e: Error) => void = () => undefined;
    const deadline = new Promise<never>((_, reject) => {
      expire = reject;
    });
    deadline.catch(() => undefined); // settled by the race below, or by nobody once answered
    const within = <V>(p: Promise<V>): Promise<V> => Promise.race([p, deadline]);
    const timer = setTimeout(() => {
      timedOut = true;
      controller?.abort();
      expire(new Error('timeout'));
    }, this.options.timeoutMs ?? 30_000);
    try {
      const headers: Record<string, string> = {
        ...(init.headers as Record<string, string> | undefined),
        authorization: `Bearer ${token}`,
        ...(sendDeviceId ? { 'x-device-id': this.options.deviceId } : {}),
        ...(this.options.schemaVersion !== undefined ? { 'x-schema-version': String(this.options.schemaVersion) } : {}),
      };
      let res: Response;
      try {
        res = await within(doFetch(`${this.baseUrl}${path}`, { ...init, headers, ...(controller ? { signal: controller.signal } : {}) }));
      } catch (e) {
        return err(timedOut ? timeoutFailure('the server did not answer in time') : networkFailure(e instanceof Error ? e.message : 'network error'));
      }
      if (res.status === 200) onHeaders?.(res.headers);
      let text: string;
      try {
        text = await within(res.text());
        const sent = init.body === undefined || init.body === null ? 0 : typeof init.body === 'string' ? utf8Length(init.body) : (init.body as Uint8Array).byteLength;
        this.options.onTraffic?.({ bytesSent: sent, bytesReceived: Number(res.headers.get('content-length')) || utf8Length(text) });
      } catch (e) {
        // The answer stalled or was cut off: as retryable as a failed request.
        return err(timedOut ? timeoutFailure('the server did not finish its answer in time') : networkFailure(e instanceof Error ? e.message : 'network error'));
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined; // judged below, by status and shape
      }
      if (!res.ok) {
        const parsed = errorResponseSchema.safeParse(json);
        const retryAfter = Number(res.headers.get('retry-after'));
        const failure: TransportFailure = {
          ...failureFromStatus(res.status, parsed.success ? (parsed.data.error.code as SyncErrorCode) : undefined, parsed.success ? parsed.data.error.message : `HTTP ${res.status}`, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined),
          status: res.status,
          ...(parsed.success && Array.isArray(parsed.data.error.details) ? { details: parsed.data.error.details as ErrorDetail[] } : {}),
        };
        return err(failure);
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) return err({ kind: 'SERVER_ERROR', retryable: false, message: 'the server answered with an unexpected shape', status: res.status });
      return ok(parsed.data);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The cursor a pull answer's head names (X-Sync-Timestamp, X-Sync-Has-More), or null if it names none. */
function pullHeadOf(headers: Headers): PullHead | null {
  const timestamp = Number(headers.get('x-sync-timestamp') ?? NaN);
  const more = headers.get('x-sync-has-more');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || (more !== 'true' && more !== 'false')) return null;
  return { timestamp, hasMore: more === 'true' };
}

/**
 * `a=1&b=2` from the defined values, percent-encoded. Not URLSearchParams: React Native's
 * polyfill of it lacks `set` and more on older versions, and this is all the client needs.
 */
function queryString(params: Readonly<Record<string, string | undefined>>): string {
  return Object.keys(params)
    .filter((k) => params[k] !== undefined)
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(params[k]!)}`)
    .join('&');
}
