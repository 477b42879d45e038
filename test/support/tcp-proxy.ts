import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy for tests, put between a client and the server or between the server and
 * PostgreSQL, that misbehaves at the socket level: it cuts connections (a reset, as a dropped
 * mobile network or a restarted middlebox does), stalls them (bytes stop flowing both ways, the
 * sockets stay open), truncates a stream after some bytes, or refuses new connections. Faults are
 * chosen per chunk by `faults`, so a seeded test decides where each lands.
 */

export type Direction = 'up' | 'down';
/** What to do with one chunk: forward it, reset the connection, stall it, or forward only the first `truncate` bytes then reset. */
export type ChunkAction = 'pass' | 'cut' | 'stall' | { readonly truncate: number };

export interface ChunkContext {
  /** up: client → target; down: target → client. */
  readonly direction: Direction;
  /** 1, 2, … in the order connections were accepted. */
  readonly connection: number;
  /** Bytes already forwarded in this direction on this connection. */
  readonly offset: number;
  readonly length: number;
}

interface Pair {
  readonly id: number;
  readonly client: Socket;
  readonly target: Socket;
  stalled: boolean;
}

export class TcpProxy {
  /** Chooses each chunk's fate; the default forwards everything. */
  faults: (c: ChunkContext) => ChunkAction = () => 'pass';
  /** New connections are reset at once while true. */
  refusing = false;
  readonly counts = { connections: 0, cut: 0, stalled: 0, truncated: 0, refused: 0 };
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, targetHost, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get host(): string {
    return '127.0.0.1';
  }

  /** Connections open now (stalled ones included). */
  get open(): number {
    return this.pairs.size;
  }

  /** Resets every open connection. */
  cutAll(): void {
    for (const p of [...this.pairs]) this.reset(p, 'cut');
  }

  /** Stops the flow on every open connection (new ones still pass unless `faults` says otherwise). */
  stallAll(): void {
    for (const p of this.pairs) this.stall(p);
  }

  async close(): Promise<void> {
    for (const p of [...this.pairs]) this.reset(p, null);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, host: string, port: number): void {
    const id = ++this.counts.connections;
    if (this.refusing) {
      this.counts.refused++;
      client.resetAndDestroy();
      return;
    }
    const target = createConnection({ host, port });
    const pair: Pair = { id, client, target, stalled: false };
    this.pairs.add(pair);
    const offsets: Record<Direction, number> = { up: 0, down: 0 };
    const forward = (direction: Direction, from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => {
        if (pair.stalled) return;
        const action = this.faults({ direction, connection: id, offset: offsets[direction], length: chunk.length });
        if (action === 'pass') {
          offsets[direction] += chunk.length;
          to.write(chunk);
        } else if (action === 'cut') {
          this.reset(pair, 'cut');
        } else if (action === 'stall') {
          this.stall(pair);
        } else {
          const n = Math.max(0, Math.min(action.truncate, chunk.length));
          offsets[direction] += n;
          this.counts.truncated++;
          // Written, then reset once flushed: the peer sees a stream that ends mid-message.
          to.write(chunk.subarray(0, n), () => this.reset(pair, null));
        }
      });
      from.on('end', () => {
        if (!pair.stalled) to.end();
      });
    };
    forward('up', client, target);
    forward('down', target, client);
    const gone = () => {
      if (!this.pairs.delete(pair)) return;
      client.destroy();
      target.destroy();
    };
    for (const s of [client, target]) {
      s.on('error', gone);
      s.on('close', gone);
    }
  }

  private stall(p: Pair): void {
    if (p.stalled) return;
    p.stalled = true;
    this.counts.stalled++;
  }

  private reset(p: Pair, count: 'cut' | null): void {
    if (count) this.counts[count]++;
    this.pairs.delete(p);
    p.client.resetAndDestroy();
    p.target.resetAndDestroy();
  }
}
