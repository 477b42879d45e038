import type { LiveConnection, LiveHandlers, LiveTransport } from '../../mobile/src/ports';

/** A live transport the test drives: each connect is recorded; the test opens, pokes and ends it. */
export class FakeLiveTransport implements LiveTransport {
  readonly connections: Array<{ handlers: LiveHandlers; closed: boolean }> = [];

  connect(handlers: LiveHandlers): LiveConnection {
    const entry = { handlers, closed: false };
    this.connections.push(entry);
    return { close: () => void (entry.closed = true) };
  }

  /** The newest connection not closed by the client, if any. */
  current(): { handlers: LiveHandlers; closed: boolean } | undefined {
    const last = this.connections[this.connections.length - 1];
    return last && !last.closed ? last : undefined;
  }

  /** The server ends the current connection (as the adapter would report it). */
  end(code: string, status?: number): void {
    const c = this.current()!;
    c.closed = true;
    c.handlers.onEnd(status === undefined ? { code } : { code, status });
  }

  /** How many connections are open (not closed by the client). */
  openCount(): number {
    return this.connections.filter((c) => !c.closed).length;
  }
}
