import type { ServerResponse } from 'node:http';
import type Koa from 'koa';
import type { Logger } from 'pino';
import type { LiveEvent, LiveFeed, Metrics, Principal } from '../../application/ports';
import { syncError } from '../../domain';
import { sendError } from './respond';

export interface LiveSettings {
  /** A comment line this often, so proxies with an idle timeout keep the stream open. */
  readonly heartbeatMs: number;
  /** Open channels per user in this process (0 = no live channel at all). */
  readonly maxPerUser: number;
  /** Open channels in this process. */
  readonly maxPerProcess: number;
  /** A client backed up (its socket takes less than the server has for it) this long without catching up is dropped. */
  readonly slowClientMs: number;
  /** The reconnect delay an EventSource should use (the SSE `retry:` field). */
  readonly retryMs: number;
}

export const DEFAULT_LIVE_SETTINGS: LiveSettings = { heartbeatMs: 20_000, maxPerUser: 10, maxPerProcess: 20_000, slowClientMs: 10_000, retryMs: 3_000 };

/** What a stalled channel still owes its client: only the newest state, never a queue. */
interface Owed {
  mark: number;
  deviceId: string | null;
  check: boolean;
}

/** One open channel; kept small, there may be tens of thousands. */
interface Channel {
  readonly res: ServerResponse;
  readonly userId: string;
  expiry: NodeJS.Timeout | null;
  /** Consecutive sweeps that found the channel backed up (see sweep). */
  behind: number;
  owed: Owed | null;
}

const change = (mark: number, deviceId: string | null) => `event: change\ndata: {"mark":${mark},"device_id":${JSON.stringify(deviceId)}}\n\n`;
const check = (reason: string) => `event: check\ndata: {"reason":${JSON.stringify(reason)}}\n\n`;
const closing = (code: string, message: string) => `event: bye\ndata: ${JSON.stringify({ code, message })}\n\n`;
const HEARTBEAT = ': keep-alive\n\n';
/** Sweeps per slowClientMs: a channel is dropped when this many in a row find it backed up. */
const SWEEPS = 4;
/** setTimeout's longest delay (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The live channel, `GET /api/sync/live` (docs/protocol.md, "Live channel"): Server-Sent Events
 * telling a user's devices that the user's high-water mark moved. It holds no data and no queue:
 * a channel that cannot take an event keeps only the newest mark owed to it, and is dropped if
 * its client reads nothing for `slowClientMs`.
 */
export class LiveHub {
  private readonly byUser = new Map<string, Set<Channel>>();
  private open_ = 0;
  private closingDown = false;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly sweeper: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(
    feed: LiveFeed,
    private readonly metrics: Metrics,
    private readonly settings: LiveSettings,
    private readonly logger: Logger,
  ) {
    this.unsubscribe = feed.subscribe((e) => this.deliver(e));
    this.heartbeat = setInterval(() => this.beat(), settings.heartbeatMs);
    this.heartbeat.unref();
    this.sweeper = setInterval(() => this.sweep(), settings.slowClientMs / SWEEPS);
    this.sweeper.unref();
  }

  get size(): number {
    return this.open_;
  }

  /** Answers `GET /api/sync/live` for an authenticated principal: a refusal, or the stream. */
  accept(ctx: Koa.Context, principal: Principal): void {
    const { userId } = principal;
    if (this.closingDown) return void sendError(ctx, syncError('UNAVAILABLE', 'The server is shutting down; connect again (to another process).'));
    const mine = this.byUser.get(userId);
    const refuse = (reason: string, message: string, limit: number) => {
      this.metrics.liveDropped(reason);
      ctx.set('Retry-After', '30');
      sendError(ctx, syncError('RATE_LIMITED', message, { limit: `live_connections_${reason}`, max: limit, retry_after_seconds: 30 }));
    };
    if (this.open_ >= this.settings.maxPerProcess) return refuse('per_process', 'This server holds as many live channels as it may; retry later (other triggers still sync).', this.settings.maxPerProcess);
    if ((mine?.size ?? 0) >= this.settings.maxPerUser) return refuse('per_user', `At most ${this.settings.maxPerUser} live channels per user; close one first.`, this.settings.maxPerUser);

    ctx.respond = false;
    ctx.status = 200;
    const hsts = ctx.response.get('Strict-Transport-Security');
    this.open(ctx.res, userId, principal.expiresAtMs, String(ctx.state['requestId'] ?? ''), hsts ? String(hsts) : null, mine);
    ctx.req.socket.setNoDelay(true);
    // Koa holds the context until the response ends: what only the request needed goes now
    // (after the request's log line, written when this handler returns).
    setImmediate(() => {
      ctx.state = {};
    });
  }

  /** Starts the stream. A method of its own: closures made here must not hold the Koa context. */
  private open(res: ServerResponse, userId: string, expiresAtMs: number | undefined, requestId: string, hsts: string | null, mine: Set<Channel> | undefined): void {
    // The stream ends only when one side closes it; the socket is not reused after.
    res.shouldKeepAlive = false;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      // nginx buffers responses unless told not to.
      'X-Accel-Buffering': 'no',
      'X-Request-Id': requestId,
      ...(hsts ? { 'Strict-Transport-Security': hsts } : {}),
    });
    const channel: Channel = { res, userId, expiry: null, behind: 0, owed: null };
    const set = mine ?? new Set<Channel>();
    if (!mine) this.byUser.set(userId, set);
    set.add(channel);
    this.metrics.liveConnections(++this.open_);
    res.on('close', () => this.forget(channel));
    res.on('drain', () => this.drained(channel));
    res.write(`retry: ${this.settings.retryMs}\nevent: hello\ndata: {"heartbeat_seconds":${this.settings.heartbeatMs / 1000}${expiresAtMs ? `,"expires_at":${expiresAtMs}` : ''}}\n\n`);
    if (expiresAtMs !== undefined) {
      const ms = Math.min(MAX_TIMER_MS, Math.max(0, expiresAtMs - Date.now()));
      channel.expiry = setTimeout(() => this.end(channel, 'TOKEN_EXPIRED', 'The token expired; connect again with a fresh one.'), ms);
    }
  }

  /** Closes every channel with `SHUTTING_DOWN`; a client that does not take the last event within `graceMs` is cut off. */
  async closeAll(graceMs = 2_000): Promise<void> {
    this.closingDown = true;
    this.unsubscribe();
    clearInterval(this.heartbeat);
    clearInterval(this.sweeper);
    const all = [...this.byUser.values()].flatMap((s) => [...s]);
    const closed = all.map((c) => new Promise<void>((resolve) => (c.res.closed ? resolve() : c.res.once('close', () => resolve()))));
    for (const c of all) this.end(c, 'SHUTTING_DOWN', 'The server is shutting down; connect again.');
    const cut = setTimeout(() => {
      for (const c of all) if (!c.res.closed) c.res.destroy();
    }, graceMs);
    await Promise.all(closed);
    clearTimeout(cut);
  }

  private end(channel: Channel, code: string, message: string): void {
    if (channel.res.writableEnded) return;
    channel.res.end(closing(code, message));
    this.logger.debug({ user: channel.userId, code }, 'live channel closed by the server');
  }

  private forget(channel: Channel): void {
    const set = this.byUser.get(channel.userId);
    if (!set?.delete(channel)) return;
    if (set.size === 0) this.byUser.delete(channel.userId);
    if (channel.expiry) clearTimeout(channel.expiry);
    this.metrics.liveConnections(--this.open_);
  }

  private deliver(event: LiveEvent): void {
    if (event.kind === 'check') {
      for (const set of this.byUser.values()) for (const c of set) this.send(c, { mark: 0, deviceId: null, check: true }, event.reason);
      return;
    }
    const set = this.byUser.get(event.userId);
    if (!set) return;
    for (const c of set) this.send(c, { mark: event.mark, deviceId: event.deviceId, check: false });
  }

  private send(c: Channel, owed: Owed, reason = ''): void {
    if (c.res.writableEnded) return;
    if (c.res.writableNeedDrain) {
      // Never a queue: what a slow client is owed folds into one event (the newest mark; if two
      // devices wrote meanwhile, not an echo of either).
      const o = c.owed;
      c.owed = o ? { mark: Math.max(o.mark, owed.mark), deviceId: o.deviceId === owed.deviceId ? o.deviceId : null, check: o.check || owed.check } : owed;
      return;
    }
    c.res.write(owed.check ? check(reason || 'missed') : change(owed.mark, owed.deviceId));
    this.metrics.livePokesSent(1);
  }

  /**
   * Drops channels found backed up (the socket refuses writes, or an event is owed) on every sweep
   * for `slowClientMs`. A 'drain' alone proves little: the kernel keeps taking a little more of a
   * socket whose reader reads nothing, so only catching up counts.
   */
  private sweep(): void {
    for (const set of this.byUser.values()) {
      for (const c of set) {
        if (!c.res.writableNeedDrain && c.owed === null) {
          c.behind = 0;
          continue;
        }
        if (++c.behind < SWEEPS) continue;
        this.metrics.liveDropped('slow_client');
        this.logger.info({ user: c.userId }, 'live channel dropped: the client does not keep up');
        c.res.destroy();
      }
    }
  }

  private drained(c: Channel): void {
    const owed = c.owed;
    c.owed = null;
    if (owed) this.send(c, owed, 'missed');
  }

  private beat(): void {
    for (const set of this.byUser.values()) {
      for (const c of set) {
        if (c.res.writableNeedDrain || c.res.writableEnded) continue;
        c.res.write(HEARTBEAT);
      }
    }
  }
}
