/**
 * Keeps the live channel open while it can be used (foreground and online) and turns its pokes
 * into syncs (docs/mobile.md, "Live sync"). A poke carries no data: it only says a sync would
 * find something, so everything still flows through the pull. Every other trigger stays.
 */
import { retryDelayMs } from '../../src/domain';
import type { AppStateMonitor, LiveConnection, LiveEnd, LiveTransport, NetworkMonitor, Timers } from './ports';

export interface LiveChannelHooks {
  /** Sync soon (the client runs one sync at a time and queues at most one more). */
  sync(): void;
  /** The mark the device has pulled up to (the lowest table cursor); null if some table never pulled. */
  knownMark(): Promise<number | null>;
  /** The channel opened (true) or ended (false). */
  liveChanged(live: boolean): void;
  /** The server refused the channel's token, refreshed once, with 401: the channel waits for `resume()`. */
  unauthenticated?(end: LiveEnd): void;
}

export interface LiveChannelSettings {
  /** Delay between a poke and its sync, so a burst of pokes makes one sync (default 50 ms). */
  readonly pokeDelayMs: number;
  /** The longest wait before a reconnect (default 60 s); delays follow the retry schedule, with jitter. */
  readonly reconnectCapMs: number;
  /** A number in [0, 1) for the jitter; Math.random unless a test fixes it. */
  readonly random: () => number;
}

export class LiveChannel {
  private started = false;
  /** Held closed after a 401 until `resume()`: reconnecting with a refused token only hammers the server. */
  private halted = false;
  private connection: LiveConnection | null = null;
  private retryTimer: unknown = null;
  private pokeTimer: unknown = null;
  private attempt = 0;
  private opens = 0;
  private readonly unsubscribers: Array<() => void> = [];

  constructor(
    private readonly transport: LiveTransport,
    private readonly appState: AppStateMonitor | undefined,
    private readonly network: NetworkMonitor,
    private readonly timers: Timers,
    private readonly deviceId: string,
    private readonly hooks: LiveChannelHooks,
    private readonly settings: LiveChannelSettings,
  ) {}

  /** Whether the channel should be open now: started, online and (if the app tells) in the foreground. */
  private wanted(): boolean {
    return this.started && !this.halted && this.network.isOnline() && (this.appState?.isForeground() ?? true);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const onChange = () => this.evaluate();
    this.unsubscribers.push(this.network.subscribe(onChange));
    if (this.appState) this.unsubscribers.push(this.appState.subscribe(onChange));
    this.evaluate();
  }

  stop(): void {
    this.started = false;
    for (const u of this.unsubscribers.splice(0)) u();
    this.evaluate();
    this.cancel('pokeTimer');
  }

  /** Closes the channel and keeps it closed until `resume()` (the client is unauthenticated). */
  halt(): void {
    this.halted = true;
    this.evaluate();
  }

  /** Opens the channel again, if wanted, after `halt()` or a 401 (the app has a token again). */
  resume(): void {
    if (!this.halted) return;
    this.halted = false;
    this.evaluate();
  }

  private evaluate(): void {
    if (!this.wanted()) {
      this.cancel('retryTimer');
      this.attempt = 0;
      this.disconnect();
      return;
    }
    if (!this.connection && this.retryTimer === null) this.connect();
  }

  private disconnect(): void {
    const c = this.connection;
    if (!c) return;
    this.connection = null;
    c.close();
    this.hooks.liveChanged(false);
  }

  private connect(): void {
    let current = true;
    const connection = this.transport.connect({
      onOpen: () => {
        if (!current) return;
        this.attempt = 0;
        this.hooks.liveChanged(true);
        // Pokes sent while the channel was down (background, offline, a reconnect) are lost: one
        // sync catches up. Not on the first open: the client's start already syncs.
        if (this.opens++ > 0) this.poke();
      },
      onChange: (mark, deviceId) => {
        if (!current || deviceId === this.deviceId) return; // its own push's echo
        void this.hooks.knownMark().then(
          (known) => {
            if (current && (known === null || mark > known)) this.poke();
          },
          () => this.poke(),
        );
      },
      onCheck: () => current && this.poke(),
      onEnd: (end) => {
        if (!current) return;
        current = false;
        if (this.connection === connection) this.connection = null;
        this.hooks.liveChanged(false);
        if (end.status === 401) {
          this.halted = true;
          this.hooks.unauthenticated?.(end);
          return;
        }
        if (this.wanted()) this.scheduleReconnect(end);
      },
    });
    // onEnd may already have run (a transport that fails at once).
    if (current) this.connection = connection;
    const close = connection.close.bind(connection);
    connection.close = () => {
      current = false;
      close();
    };
  }

  private scheduleReconnect(end: LiveEnd): void {
    // An expired token or a server going away is routine: come back at once (with jitter, so a
    // whole fleet does not reconnect in the same instant). Anything else backs off.
    const routine = end.code === 'TOKEN_EXPIRED' || end.code === 'SHUTTING_DOWN';
    if (routine) this.attempt = 0;
    this.attempt++;
    const base = routine ? 1000 : retryDelayMs(this.attempt, this.settings.reconnectCapMs);
    const delay = Math.round(base * (0.5 + this.settings.random() / 2));
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      if (this.wanted() && !this.connection) this.connect();
    }, delay);
  }

  private poke(): void {
    if (this.pokeTimer !== null) return;
    this.pokeTimer = this.timers.setTimeout(() => {
      this.pokeTimer = null;
      this.hooks.sync();
    }, this.settings.pokeDelayMs);
  }

  private cancel(timer: 'retryTimer' | 'pokeTimer'): void {
    if (this[timer] !== null) this.timers.clearTimeout(this[timer]);
    this[timer] = null;
  }
}
