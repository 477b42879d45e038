import type { Knex } from 'knex';
import { storedRows } from './server';

/**
 * A writer that behaves as our client does when the network or the server fails under it: each
 * push has a `push_id`, and every retry of that push (after a network error, a timeout or a
 * retryable answer) sends the same body with the same id, until the server acknowledges it. What
 * it saw on the way (failures by kind) is kept for the test to check.
 */

export interface PlannedPush {
  readonly pushId: string;
  /** New captures (`raw_content` is encrypted at rest, so the whole write path runs). */
  readonly captures: ReadonlyArray<{ readonly id: string; readonly raw_content: string }>;
}

export type Attempt = { readonly kind: 'ok'; readonly timestamp: number } | { readonly kind: 'http'; readonly status: number; readonly code: string } | { readonly kind: 'network' | 'timeout'; readonly message: string };

export interface PusherOptions {
  /** Where the server is now (it may move when it restarts). */
  readonly baseUrl: () => string;
  readonly token: string;
  readonly deviceId: string;
  /** The client's timeout for one request. */
  readonly timeoutMs: number;
  /** Delay before a retry (the real client backs off for seconds; tests use milliseconds). */
  readonly retryDelayMs?: (attempt: number) => number;
  /** Give up (and fail the test) after this many attempts of one push. */
  readonly maxAttempts?: number;
  /** Called when an attempt starts and ends, so a test can act while pushes are in flight. */
  readonly onAttempt?: (phase: 'start' | 'end', attempt?: Attempt) => void;
}

/** HTTP codes a client may retry (docs/protocol.md): anything else is a bug in this test or the server. */
const RETRYABLE_CODES = new Set(['UNAVAILABLE', 'INTERNAL', 'RATE_LIMITED']);

export class RetryingPusher {
  readonly attempts: Attempt[] = [];
  /** Each acknowledged push: its id and the cursor the server answered. */
  readonly acknowledged: Array<{ readonly pushId: string; readonly timestamp: number }> = [];

  constructor(private readonly options: PusherOptions) {}

  plan(prefix: string, pushes: number, perPush: number): PlannedPush[] {
    return Array.from({ length: pushes }, (_, p) => ({
      pushId: `${prefix}-push-${p}`,
      captures: Array.from({ length: perPush }, (_, r) => ({ id: `${prefix}-${p}-${r}`, raw_content: `note ${prefix} ${p} ${r}` })),
    }));
  }

  async pushAll(plan: readonly PlannedPush[]): Promise<void> {
    for (const push of plan) await this.pushUntilAcknowledged(push);
  }

  async pushUntilAcknowledged(push: PlannedPush): Promise<number> {
    const body = JSON.stringify({ last_pulled_at: null, push_id: push.pushId, changes: { captures: { created: push.captures.map((c) => ({ ...c, type: 'text' })), updated: [], deleted: [] } } });
    const max = this.options.maxAttempts ?? 400;
    for (let n = 1; n <= max; n++) {
      this.options.onAttempt?.('start');
      const attempt = await this.once(body);
      this.attempts.push(attempt);
      this.options.onAttempt?.('end', attempt);
      if (attempt.kind === 'ok') {
        this.acknowledged.push({ pushId: push.pushId, timestamp: attempt.timestamp });
        return attempt.timestamp;
      }
      if (attempt.kind === 'http' && !RETRYABLE_CODES.has(attempt.code)) throw new Error(`push ${push.pushId} refused for good: ${attempt.status} ${attempt.code}`);
      await new Promise((r) => setTimeout(r, this.options.retryDelayMs?.(n) ?? Math.min(500, 20 * n)));
    }
    throw new Error(`push ${push.pushId} not acknowledged after ${max} attempts; last: ${JSON.stringify(this.attempts.at(-1))}`);
  }

  private async once(body: string): Promise<Attempt> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    try {
      const res = await fetch(`${this.options.baseUrl()}/api/sync/push`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.options.token}`, 'x-device-id': this.options.deviceId, 'content-type': 'application/json' },
        body,
        signal,
      });
      const text = await res.text();
      let parsed: any;
      try {
        parsed = JSON.parse(text);
      } catch {
        return { kind: 'network', message: `unparsable ${res.status} answer (${text.length} bytes)` };
      }
      if (res.status === 200) return { kind: 'ok', timestamp: parsed.timestamp };
      return { kind: 'http', status: res.status, code: String(parsed?.error?.code) };
    } catch (e) {
      return signal.aborted ? { kind: 'timeout', message: String(e) } : { kind: 'network', message: e instanceof Error ? `${e.message} ${String((e as { cause?: unknown }).cause ?? '')}` : String(e) };
    }
  }
}

/**
 * Checks the database after a run: every planned capture is stored once, with its text, and was
 * written exactly once (a second application of its push would have moved `last_modified_at` past
 * `first_written_at`); one receipt per push. Returns the problems found (empty when none).
 */
export async function checkAppliedOnce(db: Knex, userId: string, plan: readonly PlannedPush[]): Promise<string[]> {
  const problems: string[] = [];
  const rows = new Map((await storedRows(db, 'captures', userId)).map((r) => [r.id as string, r]));
  for (const push of plan) {
    for (const c of push.captures) {
      const row = rows.get(c.id);
      if (!row) problems.push(`${c.id} (push ${push.pushId}) is missing`);
      else if (row.raw_content !== c.raw_content) problems.push(`${c.id} holds ${JSON.stringify(row.raw_content)}`);
      else if (String(row.first_written_at) !== String(row.last_modified_at)) problems.push(`${c.id} was written more than once (first ${row.first_written_at}, last ${row.last_modified_at})`);
      rows.delete(c.id);
    }
  }
  for (const id of rows.keys()) problems.push(`${id} was stored but never planned`);
  const receipts = await db('sync_push_receipts').where('user_id', userId).count<{ n: string }[]>({ n: '*' });
  if (Number(receipts[0]!.n) !== plan.length) problems.push(`${receipts[0]!.n} receipts for ${plan.length} pushes`);
  return problems;
}
