import { createHash } from 'node:crypto';
import { err, ok, type Result, type ResultAsync } from 'neverthrow';
import { PullChanges } from '../../src/application/pull-changes';
import { PushChanges } from '../../src/application/push-changes';
import { DEFAULT_SYNC_SETTINGS, type SyncSettings } from '../../src/application/settings';
import { failureFromStatus, httpStatusOf, pullResponseSchema, pushResponseSchema, type ErrorDetail, type PullResponseBody, type PushResponseBody, type SyncError } from '../../src/domain';
import type { PullParams, PushBody, SyncTransport, TransportFailure } from '../../mobile/src/ports';
import { MemoryChangeStore } from './memory-change-store';

/**
 * A SyncTransport that calls the server's real use cases in-process (PullChanges and PushChanges
 * over a MemoryChangeStore), so unit tests of the client stand on the server's real behaviour
 * without HTTP. It passes the SyncTransport contract (test/contract/in-process-transport.test.ts).
 * Bodies go through JSON both ways, as on the wire, and answers are checked with the same schemas
 * as FetchSyncTransport's. Tests can record calls, inject failures and hold calls at a gate.
 */

export interface InProcessServerOptions {
  readonly settings?: Partial<SyncSettings>;
  /** The server's clock (stamps are `max(now, last + 1)`); Date.now, read at call time, by default. */
  readonly now?: () => number;
}

export interface InProcessServer {
  readonly store: MemoryChangeStore;
  readonly settings: SyncSettings;
  /** A transport for one user's device, as FetchSyncTransport with that user's token would be. */
  connect(userId: string, options?: { deviceId?: string | null; schemaVersion?: number }): InProcessTransport;
}

export function createInProcessServer(options: InProcessServerOptions = {}): InProcessServer {
  const now = options.now ?? (() => Date.now());
  const settings: SyncSettings = { ...DEFAULT_SYNC_SETTINGS, ...options.settings };
  const store = new MemoryChangeStore(now);
  const pull = new PullChanges(store, settings);
  const push = new PushChanges(store, { now }, { hash: (text) => createHash('sha256').update(text, 'utf8').digest('hex') }, settings);
  return {
    store,
    settings,
    connect: (userId, o = {}) => new InProcessTransport({ pull, push }, userId, o.deviceId ?? null, o.schemaVersion),
  };
}

export type TransportCall = { readonly kind: 'pull'; readonly params: PullParams } | { readonly kind: 'push'; readonly body: PushBody };

interface InjectedFailure {
  readonly kind: 'pull' | 'push' | 'any';
  remaining: number;
  readonly failure: TransportFailure;
  /** The server handles the call, then the answer is lost (a timeout after the commit). */
  readonly afterServer: boolean;
}

export class InProcessTransport implements SyncTransport {
  /** Every call, in order, with what the client sent. */
  readonly calls: TransportCall[] = [];
  private readonly failures: InjectedFailure[] = [];
  private gate: Promise<void> | null = null;
  private inFlight = 0;
  /** The most calls that were ever under way at once. */
  maxInFlight = 0;
  /** Calls waiting at the gate of `hold()`. */
  waiting = 0;

  constructor(
    private readonly useCases: { readonly pull: PullChanges; readonly push: PushChanges },
    readonly userId: string,
    readonly deviceId: string | null,
    readonly schemaVersion: number | undefined,
  ) {}

  /** The next `times` calls (of `kind`, by default any) fail with `failure`; Infinity for every call. */
  failNext(times: number, failure: TransportFailure, options: { kind?: 'pull' | 'push'; afterServer?: boolean } = {}): void {
    this.failures.push({ kind: options.kind ?? 'any', remaining: times, failure, afterServer: options.afterServer ?? false });
  }

  /** Stops injecting failures. */
  heal(): void {
    this.failures.length = 0;
  }

  /** Calls from now on wait until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.gate = gate;
    return () => {
      if (this.gate === gate) this.gate = null;
      release();
    };
  }

  pull(params: PullParams): Promise<Result<PullResponseBody, TransportFailure>> {
    this.calls.push({ kind: 'pull', params: { ...params, tables: [...params.tables] } });
    const query: Record<string, string> = { last_pulled_at: String(params.lastPulledAt ?? 0), tables: params.tables.join(',') };
    if (params.limit !== undefined) query['limit'] = String(params.limit);
    if (params.migration !== undefined) query['migration'] = JSON.stringify(params.migration);
    // As FetchSyncTransport leaves X-Device-Id out when echoes are not to be suppressed.
    const deviceId = params.suppressEcho === false ? null : this.deviceId;
    return this.exchange('pull', () => this.useCases.pull.execute({ userId: this.userId, query, schemaVersion: this.schemaVersionText(), deviceId }), (json) => {
      const parsed = pullResponseSchema.safeParse(json);
      return parsed.success ? ok(parsed.data as PullResponseBody) : err(wrongShape());
    });
  }

  push(body: PushBody): Promise<Result<PushResponseBody, TransportFailure>> {
    const wire = JSON.parse(JSON.stringify(body)) as PushBody;
    this.calls.push({ kind: 'push', body: wire });
    return this.exchange('push', () => this.useCases.push.execute({ userId: this.userId, body: JSON.parse(JSON.stringify(body)), schemaVersion: this.schemaVersionText(), deviceId: this.deviceId }), (json) => {
      const parsed = pushResponseSchema.safeParse(json);
      return parsed.success ? ok(parsed.data) : err(wrongShape());
    });
  }

  private schemaVersionText(): string | undefined {
    return this.schemaVersion === undefined ? undefined : String(this.schemaVersion);
  }

  private async exchange<T>(
    kind: 'pull' | 'push',
    call: () => ResultAsync<unknown, SyncError>,
    read: (json: unknown) => Result<T, TransportFailure>,
  ): Promise<Result<T, TransportFailure>> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.gate) {
        this.waiting += 1;
        await this.gate;
        this.waiting -= 1;
      }
      const injected = this.takeFailure(kind);
      if (injected && !injected.afterServer) return err(injected.failure);
      const answer = await call();
      if (injected) return err(injected.failure);
      if (answer.isErr()) return err(toTransportFailure(answer.error));
      return read(JSON.parse(JSON.stringify(answer.value)));
    } finally {
      this.inFlight -= 1;
    }
  }

  private takeFailure(kind: 'pull' | 'push'): InjectedFailure | undefined {
    const f = this.failures.find((x) => x.remaining > 0 && (x.kind === 'any' || x.kind === kind));
    if (f) f.remaining -= 1;
    return f;
  }
}

/** What FetchSyncTransport makes of the server's error answer for this SyncError. */
export function toTransportFailure(error: SyncError): TransportFailure {
  const status = httpStatusOf(error.code);
  return {
    ...failureFromStatus(status, error.code, error.message),
    status,
    ...(Array.isArray(error.details) ? { details: error.details as ErrorDetail[] } : {}),
  };
}

const wrongShape = (): TransportFailure => ({ kind: 'SERVER_ERROR', retryable: false, message: 'the server answered with an unexpected shape', status: 200 });
