import type { EventSourceEvent, EventSourceLike } from '../ports';

type FetchLike = (url: string, init: { headers: Record<string, string>; signal: AbortSignal }) => Promise<{
  status: number;
  body: { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }> } } | null;
}>;

/**
 * An EventSource over fetch streaming, for Node and browsers (React Native's fetch cannot stream
 * a body: use react-native-sse there). Never reconnects by itself. Events: `open`, each named
 * event of the stream, `error` (with `xhrStatus` for an HTTP refusal), `done` when the server ends
 * the stream. Parses the text/event-stream format: `event:`/`data:` fields, comments, blank-line
 * dispatch, CR/LF/CRLF line ends.
 */
export class FetchEventSource implements EventSourceLike {
  private readonly listeners = new Map<string, Array<(e: EventSourceEvent) => void>>();
  private readonly abort = new AbortController();
  private closed = false;

  constructor(url: string, options: { headers: Record<string, string> }, fetchImpl: FetchLike = fetch as unknown as FetchLike) {
    void this.run(url, options.headers, fetchImpl);
  }

  addEventListener(type: string, listener: (event: EventSourceEvent) => void): void {
    const list = this.listeners.get(type) ?? [];
    list.push(listener);
    this.listeners.set(type, list);
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
  }

  private emit(event: EventSourceEvent): void {
    if (this.closed) return;
    for (const l of this.listeners.get(event.type) ?? []) l(event);
  }

  private async run(url: string, headers: Record<string, string>, fetchImpl: FetchLike): Promise<void> {
    try {
      const res = await fetchImpl(url, { headers, signal: this.abort.signal });
      if (res.status !== 200 || !res.body) {
        this.emit({ type: 'error', message: `HTTP ${res.status}`, xhrStatus: res.status });
        return;
      }
      this.emit({ type: 'open' });
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let type = '';
      let data: string[] = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let nl: number;
        while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? nl + 2 : nl + 1);
          if (line === '') {
            if (data.length) this.emit({ type: type || 'message', data: data.join('\n') });
            type = '';
            data = [];
            continue;
          }
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') type = v;
          else if (field === 'data') data.push(v);
        }
      }
      this.emit({ type: 'done' });
    } catch (e) {
      this.emit({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  }
}
