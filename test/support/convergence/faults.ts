/**
 * Faults for the convergence runs, injected where a phone meets them: in `fetch` (so the real
 * FetchSyncTransport classifies them), in the local database (a crash inside a transaction) and
 * in the checkpoint store (a crash before a cursor is saved).
 */
import type { CheckpointStore, SqlDriver, SqlExecutor, SqlRow, SqlValue } from '../../../mobile/src/ports';
import type { Rng } from './rng';

export const FETCH_FAULTS = ['drop-request', 'drop-response', 'http-500', 'http-503', 'delay', 'reset-request-body', 'reset-response-body'] as const;
export type FetchFault = (typeof FETCH_FAULTS)[number];

/** Where a client can be killed; the run then reopens it on the same database file and storage. */
export const CRASH_POINTS = ['after-pull-before-apply', 'mid-apply', 'after-apply-before-checkpoint', 'after-push-before-mark', 'mid-mark'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

/** Thrown at a crash point: nothing after it runs, as when the process dies there. */
export class Crash extends Error {
  constructor(readonly point: CrashPoint) {
    super(`crash at ${point}`);
  }
}

export interface FaultCounts {
  fetch: Record<string, number>;
  crashes: Record<string, number>;
}

export const newFaultCounts = (): FaultCounts => ({ fetch: {}, crashes: {} });
const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

/**
 * One device's fault switchboard: faults armed for its next requests, a background rate of random
 * faults, and at most one armed crash point. `healed` turns everything off.
 */
export class DeviceFaults {
  readonly armed: FetchFault[] = [];
  rate = 0;
  crashAt: CrashPoint | null = null;
  /** Set when a crash fired during the current sync; the runner reopens the client. */
  crashed: CrashPoint | null = null;
  healed = false;

  constructor(
    private readonly rng: Rng,
    private readonly counts: FaultCounts,
  ) {}

  heal(): void {
    this.healed = true;
    this.armed.length = 0;
    this.crashAt = null;
  }

  /** The fault for the next request, if any. */
  nextFetchFault(isPush: boolean): FetchFault | null {
    if (this.healed) return null;
    // A GET has no body to cut: an armed cut waits for the next push.
    const usable = (f: FetchFault) => isPush || f !== 'reset-request-body';
    const armed = this.armed.findIndex(usable);
    const fault = armed >= 0 ? this.armed.splice(armed, 1)[0]! : this.rate > 0 && this.rng.chance(this.rate) ? this.rng.pick(FETCH_FAULTS.filter(usable)) : null;
    if (fault) bump(this.counts.fetch, fault);
    return fault;
  }

  /** Throws Crash when `point` is armed (and disarms it). */
  maybeCrash(point: CrashPoint): void {
    if (this.healed || this.crashAt !== point) return;
    this.crashAt = null;
    this.crashed = point;
    bump(this.counts.crashes, point);
    throw new Crash(point);
  }

  delayMs(): number {
    return this.rng.int(1, 25);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A body that sends its first half, then fails: the connection is cut mid-request. */
function cutBody(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(bytes.subarray(0, Math.max(1, Math.floor(bytes.length / 2))));
        return;
      }
      controller.error(new Error('connection reset'));
    },
  });
}

/**
 * `fetch` as a device sees it through a bad network. `target()` is the server's current base URL
 * (it changes when the server restarts); devices are configured with `http://sync.invalid`.
 */
export function faultyFetch(faults: DeviceFaults, target: () => string): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input).replace('http://sync.invalid', target());
    const isPush = init?.method === 'POST';
    const fault = faults.nextFetchFault(isPush);
    switch (fault) {
      case 'drop-request':
        throw new TypeError('fetch failed (request dropped)');
      case 'http-500':
      case 'http-503': {
        const status = fault === 'http-500' ? 500 : 503;
        return new Response(JSON.stringify({ error: { code: status === 500 ? 'INTERNAL_ERROR' : 'UNAVAILABLE', message: 'injected' } }), {
          status,
          headers: { 'content-type': 'application/json' },
        });
      }
      case 'delay':
        await sleep(faults.delayMs());
        return fetch(url, init);
      case 'drop-response': {
        // The server handles the request in full (and commits); its answer never arrives.
        const res = await fetch(url, init);
        await res.arrayBuffer();
        throw new TypeError('fetch failed (response dropped)');
      }
      case 'reset-request-body': {
        const body = init?.body;
        const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : (body as Uint8Array);
        const headers = { ...(init?.headers as Record<string, string>) };
        return fetch(url, { ...init, headers, body: cutBody(bytes), duplex: 'half' } as RequestInit);
      }
      case 'reset-response-body': {
        const res = await fetch(url, init);
        const bytes = new Uint8Array(await res.arrayBuffer());
        const headers = new Headers(res.headers);
        headers.delete('content-encoding');
        headers.delete('content-length');
        return new Response(cutBody(bytes), { status: res.status, headers });
      }
      default:
        return fetch(url, init);
    }
  }) as typeof fetch;
}

/** The device's SQLite database, killed mid-transaction at the armed crash point (SQLite rolls it back). */
export function crashingDriver(inner: SqlDriver, faults: DeviceFaults): SqlDriver {
  const after = (sql: string) => {
    if (/ON CONFLICT\(id\) DO UPDATE/.test(sql)) faults.maybeCrash('mid-apply');
    // markPushed: the rows' stamps are set, their _changed not yet cleared.
    if (/SET last_modified_at = COALESCE/.test(sql)) faults.maybeCrash('mid-mark');
  };
  const watch = (tx: SqlExecutor): SqlExecutor => ({
    execute: async (sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> => {
      const rows = await tx.execute(sql, params);
      after(sql);
      return rows;
    },
    executeMany: async (sql: string, paramSets: ReadonlyArray<readonly SqlValue[]>): Promise<void> => {
      await tx.executeMany(sql, paramSets);
      after(sql);
    },
  });
  return {
    execute: (sql, params) => inner.execute(sql, params),
    executeMany: (sql, paramSets) => inner.executeMany(sql, paramSets),
    transaction: (fn) => inner.transaction((tx) => fn(watch(tx))),
    close: () => inner.close(),
  };
}

/** The cursor store, killed just before it would save a cursor (the page is applied, the cursor not moved). */
export function crashingCheckpoints(inner: CheckpointStore, faults: DeviceFaults): CheckpointStore {
  return {
    getLastPulledAt: (t) => inner.getLastPulledAt(t),
    setLastPulledAt: async (t, ts) => {
      if (ts !== null) faults.maybeCrash('after-apply-before-checkpoint');
      return inner.setLastPulledAt(t, ts);
    },
    getDeviceId: () => inner.getDeviceId(),
    setDeviceId: (id) => inner.setDeviceId(id),
    getDatabaseId: () => inner.getDatabaseId(),
    setDatabaseId: (id) => inner.setDatabaseId(id),
    getPushAttempt: (t, slot) => inner.getPushAttempt(t, slot),
    setPushAttempt: (t, a, slot) => inner.setPushAttempt(t, a, slot),
    scope: (name) => crashingCheckpoints(inner.scope(name), faults),
  };
}
