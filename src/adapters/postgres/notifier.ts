import type { PGlite } from '@electric-sql/pglite';
import type { Knex } from 'knex';
import pg from 'pg';
import { liveChannelName, type LiveEvent, type LiveFeed, type MarkPayload } from '../../application/ports';
import { usesPgDriver } from './connection';

/** What the feed logs (a pino logger fits). */
export interface FeedLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface PgFeedOptions {
  /** Delay before reconnect attempt `n` (1 = first); default 250 ms doubling to 10 s, with jitter. */
  readonly reconnectDelayMs?: (attempt: number) => number;
  /**
   * A `SELECT 1` on the listening connection this often: a connection cut without a word (a
   * network partition, a proxy's idle timeout) is noticed by a failed query, not by silence.
   */
  readonly pingMs?: number;
}

const defaultDelay = (attempt: number) => Math.min(10_000, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);

/** Parses a NOTIFY payload of KnexChangeStore; anything else (another writer's NOTIFY on the channel) is ignored. */
function parsePayload(payload: string): LiveEvent | null {
  try {
    const p = JSON.parse(payload) as Partial<MarkPayload>;
    if (typeof p.u !== 'string' || typeof p.m !== 'number' || !(p.d === null || typeof p.d === 'string')) return null;
    return { kind: 'mark', userId: p.u, mark: p.m, deviceId: p.d };
  } catch {
    return null;
  }
}

abstract class FanOut {
  private readonly listeners = new Set<(event: LiveEvent) => void>();

  subscribe(listener: (event: LiveEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  protected emit(event: LiveEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A subscriber's fault must not keep the others from hearing.
      }
    }
  }

  protected heard(payload: string): void {
    const event = parsePayload(payload);
    if (event) this.emit(event);
  }
}

/**
 * LISTEN on PostgreSQL through one dedicated `pg` client (never one of the pool's: a pooled
 * connection is handed to other work, and knex may close it). When the connection fails it is
 * opened again with backoff, and every subscriber gets a `check` event: notifications sent while
 * it was down are lost for good.
 */
export class PgLiveFeed extends FanOut implements LiveFeed {
  private client: pg.Client | null = null;
  private closed = false;
  private attempt = 0;
  private retry: NodeJS.Timeout | null = null;
  private ping: NodeJS.Timeout | null = null;
  /** The listening backend's pid (tests terminate it). */
  backendPid: number | null = null;

  constructor(
    private readonly connection: string | pg.ClientConfig,
    private readonly channel: () => Promise<string>,
    private readonly log: FeedLog,
    private readonly options: PgFeedOptions = {},
  ) {
    super();
  }

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (e) {
      // The server still serves pulls and pushes; live pokes start once the database answers.
      this.log.warn({ err: e }, 'live: cannot listen yet; retrying');
      this.scheduleReconnect();
    }
  }

  private async connect(): Promise<void> {
    const channel = await this.channel();
    const config = typeof this.connection === 'string' ? { connectionString: this.connection } : this.connection;
    const client = new pg.Client({ ...config, keepAlive: true, application_name: `note-sync-live ${channel}`.slice(0, 63) });
    client.on('notification', (n) => {
      if (n.channel === channel && n.payload !== undefined) this.heard(n.payload);
    });
    const lost = (e?: Error) => {
      if (this.client !== client) return;
      this.client = null;
      this.backendPid = null;
      if (this.ping) clearInterval(this.ping);
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      if (this.closed) return;
      this.log.warn({ err: e }, 'live: listening connection lost; reconnecting');
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
    } catch (e) {
      client.removeAllListeners();
      client.on('error', () => {});
      await client.end().catch(() => {});
      throw e;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.backendPid = (client as unknown as { processID: number | null }).processID ?? null;
    const pingMs = this.options.pingMs ?? 30_000;
    if (pingMs > 0) {
      this.ping = setInterval(() => void client.query('SELECT 1').catch((e: Error) => lost(e)), pingMs);
      this.ping.unref();
    }
    const wasDown = this.attempt > 0;
    this.attempt = 0;
    if (wasDown) {
      this.log.info({ channel }, 'live: listening again; asking every subscriber to check');
      this.emit({ kind: 'check', reason: 'listener_reconnected' });
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retry) return;
    this.attempt++;
    const delay = (this.options.reconnectDelayMs ?? defaultDelay)(this.attempt);
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect().catch((e: unknown) => {
        this.log.warn({ err: e, attempt: this.attempt }, 'live: reconnect failed');
        this.scheduleReconnect();
      });
    }, delay);
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.ping) clearInterval(this.ping);
    const client = this.client;
    this.client = null;
    if (client) await client.end().catch(() => {});
  }
}

/**
 * LISTEN on PGlite, the embedded database: its one connection also runs every query, and a
 * notification arrives with the answer of whichever query follows the COMMIT. LISTEN is issued
 * once at start, outside any transaction (PGlite runs one statement at a time: a LISTEN waiting
 * on a transaction would wait for it to end). In-process, this connection cannot drop.
 */
export class PgLiteLiveFeed extends FanOut implements LiveFeed {
  private stop: (() => Promise<void>) | null = null;

  constructor(
    private readonly instance: () => Promise<PGlite>,
    private readonly channel: () => Promise<string>,
  ) {
    super();
  }

  async start(): Promise<void> {
    const [pglite, channel] = await Promise.all([this.instance(), this.channel()]);
    // Quoted: the channel has a dot, and PGlite sends the name to LISTEN as given.
    this.stop = await pglite.listen(`"${channel.replace(/"/g, '""')}"`, (payload) => this.heard(payload));
  }

  async close(): Promise<void> {
    const stop = this.stop;
    this.stop = null;
    if (stop) await stop().catch(() => {});
  }
}

/** The live feed of the database the knex instance opened (see connection.ts). */
export function createLiveFeed(db: Knex, log: FeedLog, options: PgFeedOptions = {}): LiveFeed {
  const channel = async () => liveChannelName(String(((await db.raw('SELECT current_schema() AS s')) as { rows: Array<{ s: string }> }).rows[0]!.s));
  const config = (db.client as { config: { client?: unknown; connection?: unknown } }).config;
  if (usesPgDriver(db)) return new PgLiveFeed(config.connection as string | pg.ClientConfig, channel, log, options);
  const connection = config.connection as () => { pglite: PGlite } | Promise<{ pglite: PGlite }>;
  return new PgLiteLiveFeed(async () => (await connection()).pglite, channel);
}
