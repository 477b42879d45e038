import { WrongUserError } from '../identity';
import type { EventSourceEvent, EventSourceFactory, LiveConnection, LiveHandlers, LiveTransport } from '../ports';
import { TokenSource, type GetToken } from '../token-source';

export interface SseLiveTransportOptions {
  readonly baseUrl: string;
  /**
   * The bearer token, asked afresh at each connect (a channel closes when its token expires); a
   * refusal (401) is answered once with `getToken({ forceRefresh: true })`, as for sync requests.
   */
  readonly getToken: GetToken;
  readonly deviceId: string;
  /** Makes the EventSource: `(url, o) => new EventSource(url, o)` with react-native-sse's EventSource. */
  readonly eventSource: EventSourceFactory;
}

function parse(event: EventSourceEvent): Record<string, unknown> | null {
  try {
    const v = typeof event.data === 'string' ? (JSON.parse(event.data) as unknown) : null;
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** LiveTransport over Server-Sent Events: `GET /api/sync/live` with the token in a header. */
export class SseLiveTransport implements LiveTransport {
  private readonly tokens: TokenSource;

  constructor(private readonly options: SseLiveTransportOptions) {
    this.tokens = new TokenSource(options.getToken);
  }

  connect(handlers: LiveHandlers): LiveConnection {
    let done = false;
    let source: { close(): void } | null = null;
    const end = (code: string, status?: number) => {
      if (done) return;
      done = true;
      source?.close();
      handlers.onEnd(status === undefined ? { code } : { code, status });
    };
    // A 401 is answered once with a refreshed token; the second is the channel's end (401).
    const open = async (refused: string | null) => {
      const token = refused === null ? await this.tokens.current() : await this.tokens.refresh(refused);
      if (done) return;
      const es = this.options.eventSource(`${this.options.baseUrl.replace(/\/$/, '')}/api/sync/live`, {
        headers: { Authorization: `Bearer ${token}`, 'X-Device-Id': this.options.deviceId, Accept: 'text/event-stream' },
        pollingInterval: 0,
      });
      source = es;
      if (done) return es.close();
      // `hello` is the server's first event: the channel is accepted (not just the socket open).
      let opened = false;
      es.addEventListener('hello', () => {
        opened = true;
        if (!done) handlers.onOpen();
      });
      es.addEventListener('change', (e) => {
        const d = parse(e);
        if (done || !d || typeof d['mark'] !== 'number') return;
        handlers.onChange(d['mark'], typeof d['device_id'] === 'string' ? d['device_id'] : null);
      });
      es.addEventListener('check', () => !done && handlers.onCheck());
      es.addEventListener('bye', (e) => {
        const code = parse(e)?.['code'];
        end(typeof code === 'string' ? code : 'CLOSED');
      });
      es.addEventListener('error', (e) => {
        if (done) return;
        if (e.xhrStatus === 401 && refused === null && !opened) {
          es.close();
          source = null;
          open(token).catch((e: unknown) => end(e instanceof WrongUserError ? e.code : 'NETWORK'));
          return;
        }
        end(e.xhrStatus && e.xhrStatus >= 400 ? errorCodeOf(e) : 'NETWORK', e.xhrStatus && e.xhrStatus >= 400 ? e.xhrStatus : undefined);
      });
      // react-native-sse: `done` when the server ends the stream.
      es.addEventListener('done', () => end('CLOSED'));
    };
    open(null).catch((e: unknown) => end(e instanceof WrongUserError ? e.code : 'NETWORK'));
    return {
      close: () => {
        done = true;
        source?.close();
      },
    };
  }
}

function errorCodeOf(e: EventSourceEvent): string {
  if (e.xhrStatus === 401) return 'UNAUTHENTICATED';
  if (e.xhrStatus === 429) return 'RATE_LIMITED';
  if (e.xhrStatus === 404) return 'NOT_FOUND';
  return 'HTTP_ERROR';
}
