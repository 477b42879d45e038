import { isDeepStrictEqual } from 'node:util';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { okAsync, ResultAsync, type Result } from 'neverthrow';
import { NodeSha256Digest } from '../../src/adapters/crypto/node-digest';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { KnexChangeStore } from '../../src/adapters/postgres/knex-change-store';
import type { ChangeStore, Clock, PullPage, PullQuery, PushTransaction, ReceiptLookup } from '../../src/application/ports';
import { PullChanges } from '../../src/application/pull-changes';
import { PushChanges, type PushInput, type PushResponse } from '../../src/application/push-changes';
import type { SyncSettings } from '../../src/application/settings';
import type { SyncError } from '../../src/domain';
import { loadConfig } from '../../src/main/config';
import { describeEachDatabase } from '../support/databases';
import { storedRows, TEST_FIELD_KEYS, TEST_SECRET, testCipher } from '../support/server';

/**
 * Every ordering of a push against pulls, in the style of PostgreSQL's isolation tester.
 *
 * A scenario is 2–3 sessions, each a short list of steps. A push session is three steps of the
 * real `PushChanges` over the real `KnexChangeStore`, held at two checkpoints inside its
 * transaction: `begin` (the user's lock is taken), `write` (the rows are written and stamped, the
 * receipt saved; still uncommitted), `commit`. A pull session's step is one page of the real
 * `PullChanges` over the real `KnexChangeStore` (what `GET /api/sync/pull` calls; the HTTP layer
 * holds no state and would only triple the cost of each step), applied to the device's replica.
 * Applying is local to the device and commutes with every server step, so it is part of the pull
 * step rather than a step of its own that would only multiply the schedules by equivalent copies.
 *
 * Every interleaving of the sessions' steps that keeps each session's own order is run, each on a
 * user of its own. After the schedule every puller pulls again from its final cursor (page by
 * page until `has_more` is false) and must hold exactly the server's active rows (no missing row,
 * no stale version, no deleted row left, never told to create a row it holds); every push must
 * have been answered and its rows must be on the server, written once (a create is never applied
 * twice, a replay writes nothing and answers as its original, conflicts are recorded once).
 *
 * Blocking: a push session runs on a connection pool of its own with one connection (the
 * held-open writer of cursor-race.test.ts, on a second pool), so its backend pid is known. A step
 * that has not finished while `pg_blocking_pids(pid)` is non-empty is "waiting" (the isolation
 * tester's `<waiting ...>`), and the schedule goes on with the other sessions. A later step of a
 * waiting session is queued behind it (a session runs one step at a time) and runs as soon as the
 * waiting step completes, which the trace shows as `<done>`. A schedule that ends with a step
 * still waiting is reported as stuck; no step can hang the run (each has a time limit).
 *
 * PGlite has a single connection: a pull issued while a push transaction is open would wait for
 * it forever, and the push would never be told to commit. On PGlite only the serial
 * interleavings run (no step of another session while a push transaction is open); the
 * concurrent ones need PostgreSQL (DATABASE_URL).
 *
 * The control check runs the same schedules with the naive cursor of cursor-race.test.ts (the
 * clock at pull time instead of the newest committed stamp): it must lose rows, which shows the
 * invariant can fail.
 */

// ----------------------------------------------------------------------------------------------
// Scenarios

type Body = Record<string, unknown>;

/** What a push must have done to the server once it is answered. */
interface Effect {
  readonly table: string;
  readonly id: string;
  readonly created?: boolean;
  readonly deleted?: boolean;
  readonly values?: Record<string, unknown>;
}

interface PushSession {
  readonly kind: 'push';
  readonly label: string;
  readonly device: string;
  /** The body, given the seed pushes' answered timestamps. */
  readonly body: (seeded: readonly number[]) => Body;
  readonly effects: readonly Effect[];
}

interface PullSession {
  readonly kind: 'pull';
  readonly label: string;
  readonly device: string;
  readonly pulls: number;
  readonly limit?: number;
  /** `primed`: has pulled everything seeded before the schedule starts; `first-sync`: starts from null. */
  readonly start: 'primed' | 'first-sync';
}

type Session = PushSession | PullSession;

interface Scenario {
  readonly key: string;
  readonly title: string;
  /** Pushes (over HTTP, one after the other) before the schedule starts. */
  readonly seed: ReadonlyArray<{ readonly device: string; readonly body: (seeded: readonly number[]) => Body }>;
  readonly sessions: readonly Session[];
  /** sync_conflicts rows the user must have at the end, whatever the order. */
  readonly conflicts: number;
}

const SCENARIOS: readonly Scenario[] = [
  {
    key: 'insert',
    title: '1. insert pushed while pulls run (an incremental puller and a first sync)',
    seed: [{ device: 'seed', body: () => ({ changes: { ideas: { created: [{ id: 's1', text: 'seeded' }] } } }) }],
    sessions: [
      {
        kind: 'push',
        label: 'A',
        device: 'phone-a',
        body: (ts) => ({
          last_pulled_at: ts[0],
          changes: { captures: { created: [{ id: 'c1', type: 'text', raw_content: 'secret note' }] }, ideas: { created: [{ id: 'n1', text: 'new idea' }] } },
        }),
        effects: [
          { table: 'captures', id: 'c1', created: true, values: { raw_content: 'secret note' } },
          { table: 'ideas', id: 'n1', created: true, values: { text: 'new idea' } },
        ],
      },
      { kind: 'pull', label: 'B', device: 'tablet-b', pulls: 2, start: 'primed' },
      { kind: 'pull', label: 'C', device: 'laptop-c', pulls: 1, start: 'first-sync' },
    ],
    conflicts: 0,
  },
  {
    key: 'update',
    title: '2. update of a row the pullers already hold',
    seed: [{ device: 'seed', body: () => ({ changes: { todos: { created: [{ id: 't1', description: 'v1' }, { id: 't2', description: 'other' }] } } }) }],
    sessions: [
      {
        kind: 'push',
        label: 'A',
        device: 'phone-a',
        body: (ts) => ({ last_pulled_at: ts[0], changes: { todos: { updated: [{ id: 't1', description: 'v2', _changed: 'description' }] } } }),
        effects: [{ table: 'todos', id: 't1', values: { description: 'v2' } }],
      },
      { kind: 'pull', label: 'B', device: 'tablet-b', pulls: 2, start: 'primed' },
      { kind: 'pull', label: 'C', device: 'laptop-c', pulls: 1, limit: 1, start: 'primed' },
    ],
    conflicts: 0,
  },
  {
    key: 'delete',
    title: '3. delete (and an update) pushed while pulls run',
    seed: [{ device: 'seed', body: () => ({ changes: { ideas: { created: [1, 2, 3].map((n) => ({ id: `i${n}`, text: `idea ${n}` })) } } }) }],
    sessions: [
      {
        kind: 'push',
        label: 'A',
        device: 'phone-a',
        body: (ts) => ({ last_pulled_at: ts[0], changes: { ideas: { updated: [{ id: 'i2', text: 'idea 2 v2' }], deleted: ['i1'] } } }),
        effects: [
          { table: 'ideas', id: 'i1', deleted: true },
          { table: 'ideas', id: 'i2', values: { text: 'idea 2 v2' } },
        ],
      },
      { kind: 'pull', label: 'B', device: 'tablet-b', pulls: 2, start: 'primed' },
      { kind: 'pull', label: 'C', device: 'laptop-c', pulls: 1, limit: 2, start: 'first-sync' },
    ],
    conflicts: 0,
  },
  {
    key: 'two-pushers',
    title: '4. two devices push for one user (the second waits on the user lock) while a third pulls',
    seed: [{ device: 'seed', body: () => ({ changes: { todos: { created: [{ id: 't1', description: 'v1' }] } } }) }],
    sessions: [
      {
        kind: 'push',
        label: 'A',
        device: 'phone-a',
        body: (ts) => ({ last_pulled_at: ts[0], changes: { ideas: { created: [{ id: 'a1', text: 'from the phone' }] }, todos: { updated: [{ id: 't1', state: 'done', _changed: 'state' }] } } }),
        effects: [
          { table: 'ideas', id: 'a1', created: true, values: { text: 'from the phone' } },
          { table: 'todos', id: 't1', values: { state: 'done' } },
        ],
      },
      {
        kind: 'push',
        label: 'B',
        device: 'laptop-b',
        body: (ts) => ({ last_pulled_at: ts[0], changes: { ideas: { created: [{ id: 'b1', text: 'from the laptop' }] }, todos: { updated: [{ id: 't1', description: 'renamed', _changed: 'description' }] } } }),
        effects: [
          { table: 'ideas', id: 'b1', created: true, values: { text: 'from the laptop' } },
          { table: 'todos', id: 't1', values: { description: 'renamed' } },
        ],
      },
      { kind: 'pull', label: 'C', device: 'tablet-c', pulls: 1, start: 'primed' },
    ],
    // Whoever commits second finds t1 changed by the other device since its last pull: one per-column merge.
    conflicts: 1,
  },
  {
    key: 'paged',
    title: '5. a first sync paging one row at a time across a commit',
    seed: [{ device: 'seed', body: () => ({ changes: { todos: { created: [1, 2, 3].map((n) => ({ id: `s${n}`, description: `todo ${n}` })) } } }) }],
    sessions: [
      {
        kind: 'push',
        label: 'A',
        device: 'phone-a',
        body: (ts) => ({
          last_pulled_at: ts[0],
          changes: { todos: { created: [{ id: 'n1', description: 'new todo' }], updated: [{ id: 's1', description: 'todo 1 v2' }], deleted: ['s3'] } },
        }),
        effects: [
          { table: 'todos', id: 'n1', created: true, values: { description: 'new todo' } },
          { table: 'todos', id: 's1', values: { description: 'todo 1 v2' } },
          { table: 'todos', id: 's3', deleted: true },
        ],
      },
      { kind: 'pull', label: 'B', device: 'tablet-b', pulls: 4, limit: 1, start: 'first-sync' },
    ],
    conflicts: 0,
  },
  {
    key: 'replay',
    title: '6. a push replayed with the same push_id races its original',
    seed: [
      { device: 'seed', body: () => ({ changes: { todos: { created: [{ id: 't1', description: 'v1' }] } } }) },
      // Another device edits t1 after the pusher's last pull, so the push resolves one conflict.
      { device: 'laptop-x', body: (ts) => ({ last_pulled_at: ts[0], changes: { todos: { updated: [{ id: 't1', description: 'edited elsewhere', _changed: 'description' }] } } }) },
    ],
    sessions: (['A', 'R'] as const)
      .map(
        (label): Session => ({
          kind: 'push',
          label,
          device: 'phone-a',
          body: (ts) => ({
            last_pulled_at: ts[0],
            push_id: 'batch-1',
            changes: { ideas: { created: [{ id: 'n1', text: 'pushed once' }] }, todos: { updated: [{ id: 't1', state: 'done', _changed: 'state' }] } },
          }),
          effects: [
            { table: 'ideas', id: 'n1', created: true, values: { text: 'pushed once' } },
            { table: 'todos', id: 't1', values: { state: 'done', description: 'edited elsewhere' } },
          ],
        }),
      )
      .concat([{ kind: 'pull', label: 'B', device: 'tablet-b', pulls: 1, start: 'primed' }]),
    conflicts: 1,
  },
];

/** The columns compared between a replica and the server, besides the stamp. */
const CONTENT: Readonly<Record<string, readonly string[]>> = {
  captures: ['type', 'raw_content'],
  todos: ['description', 'state', 'priority'],
  ideas: ['text'],
};

// ----------------------------------------------------------------------------------------------
// Enumeration

function stepNames(session: Session): string[] {
  if (session.kind === 'push') return ['begin', 'write', 'commit'];
  return Array.from({ length: session.pulls }, (_, i) => (session.pulls === 1 ? 'pull' : `pull${i + 1}`));
}

/** Every sequence of session indices holding `lengths[i]` copies of i: every interleaving. */
function interleavings(lengths: readonly number[]): number[][] {
  const out: number[][] = [];
  const left = [...lengths];
  const total = lengths.reduce((a, b) => a + b, 0);
  const current: number[] = [];
  const walk = (): void => {
    if (current.length === total) {
      out.push([...current]);
      return;
    }
    for (let s = 0; s < left.length; s++) {
      if (left[s] === 0) continue;
      left[s] = left[s]! - 1;
      current.push(s);
      walk();
      current.pop();
      left[s] = left[s]! + 1;
    }
  };
  walk();
  return out;
}

function multinomial(lengths: readonly number[]): number {
  const fact = (n: number): number => (n <= 1 ? 1 : n * fact(n - 1));
  return lengths.reduce((acc, n) => acc / fact(n), fact(lengths.reduce((a, b) => a + b, 0)));
}

/** No step of another session runs while a push transaction is open (all PGlite can run). */
function isSerial(order: readonly number[], sessions: readonly Session[]): boolean {
  const next = sessions.map(() => 0);
  let open: number | null = null;
  for (const s of order) {
    const step = stepNames(sessions[s]!)[next[s]!++]!;
    if (open !== null && open !== s) return false;
    if (step === 'begin') open = s;
    if (step === 'commit') open = null;
  }
  return true;
}

function describeOrder(order: readonly number[], sessions: readonly Session[]): string {
  const next = sessions.map(() => 0);
  return order.map((s) => `${sessions[s]!.label}.${stepNames(sessions[s]!)[next[s]!++]}`).join(' ');
}

// ----------------------------------------------------------------------------------------------
// Driving a push through its steps

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * One real push (`PushChanges` over `KnexChangeStore`), held at checkpoints inside its
 * transaction: `begin` returns once the user's lock is held, `write` once every row is written
 * (stamped, uncommitted), `commit` once the transaction committed and the push answered.
 */
class SteppedPush implements ChangeStore {
  private readonly inner: KnexChangeStore;
  private readonly locked = deferred();
  private readonly mayWrite = deferred();
  private readonly written = deferred();
  private readonly mayCommit = deferred();
  private outcome: Promise<Result<PushResponse, SyncError>> | null = null;
  result: Result<PushResponse, SyncError> | null = null;

  constructor(
    db: Knex,
    private readonly settings: SyncSettings,
    private readonly input: PushInput,
    /** The control: the push never finds its receipt (a replay is applied again). */
    private readonly blindToReceipts = false,
  ) {
    this.inner = new KnexChangeStore(db, testCipher);
  }

  pullPage(userId: string, query: PullQuery): ResultAsync<PullPage, SyncError> {
    return this.inner.pullPage(userId, query);
  }

  ping(): ResultAsync<void, SyncError> {
    return this.inner.ping();
  }

  inPushTransaction<T>(userId: string, work: (tx: PushTransaction) => ResultAsync<T, SyncError>, receipt?: ReceiptLookup): ResultAsync<T, SyncError> {
    return this.inner.inPushTransaction(
      userId,
      (tx) =>
        new ResultAsync(
          (async () => {
            this.locked.resolve();
            await this.mayWrite.promise;
            const blind = new Proxy(tx, { get: (t, key, receiver) => (key === 'findReceipt' ? () => okAsync(null) : Reflect.get(t, key, receiver)) });
            const result = await work(this.blindToReceipts ? blind : tx);
            this.written.resolve();
            await this.mayCommit.promise;
            return result;
          })(),
        ),
      this.blindToReceipts ? undefined : receipt,
    );
  }

  async begin(): Promise<void> {
    this.outcome = Promise.resolve(new PushChanges(this, clock, new NodeSha256Digest(), this.settings).execute(this.input));
    await this.until(this.locked.promise);
  }

  async write(): Promise<void> {
    this.mayWrite.resolve();
    await this.until(this.written.promise);
  }

  async commit(): Promise<void> {
    this.mayCommit.resolve();
    this.result = await this.outcome!;
  }

  /** Rolls back a push a failed schedule left open, and waits for it to end. */
  async abort(): Promise<void> {
    const stop = new Error('schedule aborted');
    this.mayWrite.reject(stop);
    this.mayCommit.reject(stop);
    if (this.outcome) await Promise.race([this.outcome, sleep(STEP_TIMEOUT_MS)]);
  }

  private until(checkpoint: Promise<void>): Promise<void> {
    const ended = this.outcome!.then((r) => {
      throw new Error(`the push ended before reaching its checkpoint: ${r.isErr() ? `${r.error.code} ${r.error.message}` : 'ok'}`);
    });
    return Promise.race([checkpoint, ended]);
  }
}

// ----------------------------------------------------------------------------------------------
// The scheduler

const STEP_TIMEOUT_MS = 10_000;
const clock: Clock = { now: () => Date.now() };
const POLL_MS = 2;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class RunningStep {
  done = false;
  failure: unknown = undefined;
  constructor(
    readonly label: string,
    readonly promise: Promise<void>,
  ) {
    promise.then(
      () => {
        this.done = true;
      },
      (e: unknown) => {
        this.done = true;
        this.failure = e;
      },
    );
  }
}

interface LiveSession {
  readonly pid: number | undefined;
  readonly steps: ReadonlyArray<{ readonly label: string; run(): Promise<void> }>;
  next: number;
  waiting: RunningStep | null;
  readonly queue: Array<{ readonly label: string; run(): Promise<void> }>;
}

/**
 * Whether `pid` waits on a lock held by one of `peers` (the schedule's own sessions). A push's
 * COMMIT also takes PostgreSQL's one NOTIFY lock (the live poke) for the moment it commits, so a
 * commit of the other worker's schedule can block it briefly: that is not this schedule's wait.
 */
type IsBlocked = (pid: number, peers: readonly number[]) => Promise<boolean>;

/** Waits until a step finishes ('done') or its backend waits on a lock ('waiting'). */
async function settle(step: RunningStep, pid: number | undefined, isBlocked: IsBlocked | null, peers: readonly number[]): Promise<'done' | 'waiting'> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  const finished = step.promise.catch(() => undefined);
  while (!step.done) {
    if (Date.now() > deadline) throw new Error(`${step.label} neither finished nor waited on a lock within ${STEP_TIMEOUT_MS} ms`);
    if (pid !== undefined && isBlocked) {
      // Most steps finish within a few ms; ask the server whether the session is blocked only then.
      await Promise.race([finished, sleep(POLL_MS)]);
      if (!step.done && (await isBlocked(pid, peers)) && !step.done) return 'waiting';
    } else {
      await Promise.race([finished, sleep(Math.max(0, deadline - Date.now()))]);
    }
  }
  if (step.failure !== undefined) throw new Error(`${step.label} failed: ${step.failure instanceof Error ? step.failure.message : String(step.failure)}`);
  return 'done';
}

/** Runs one interleaving; returns the trace of what actually happened, isolation-tester style. */
async function runSchedule(order: readonly number[], sessions: LiveSession[], isBlocked: IsBlocked | null, trace: string[]): Promise<{ waited: number }> {
  let waited = 0;
  const peers = sessions.flatMap((s) => (s.pid === undefined ? [] : [s.pid]));
  const start = async (s: LiveSession, step: { label: string; run(): Promise<void> }) => {
    const running = new RunningStep(step.label, step.run());
    if ((await settle(running, s.pid, isBlocked, peers)) === 'waiting') {
      s.waiting = running;
      waited++;
      trace.push(`${step.label} <waiting>`);
    } else trace.push(step.label);
  };
  // Completes the waiting steps whose blocker went away, then the steps queued behind them.
  const drain = async () => {
    for (let progressed = true; progressed; ) {
      progressed = false;
      for (const s of sessions) {
        if (!s.waiting || (await settle(s.waiting, s.pid, isBlocked, peers)) === 'waiting') continue;
        trace.push(`${s.waiting.label} <done>`);
        s.waiting = null;
        progressed = true;
        while (!s.waiting && s.queue.length) await start(s, s.queue.shift()!);
      }
    }
  };
  for (const index of order) {
    const s = sessions[index]!;
    const step = s.steps[s.next++]!;
    if (s.waiting) s.queue.push(step);
    else await start(s, step);
    await drain();
  }
  await drain();
  const stuck = sessions.filter((s) => s.waiting).map((s) => s.waiting!.label);
  if (stuck.length) throw new Error(`stuck: ${stuck.join(', ')} still waiting with no step left to release it`);
  return { waited };
}

// ----------------------------------------------------------------------------------------------
// Devices and the invariant

type Page = { changes: Record<string, { created: any[]; updated: any[]; deleted: string[] }>; timestamp: number; has_more: boolean };
type PullFn = (userId: string, deviceId: string, cursor: number | null, limit: number | undefined) => Promise<Page>;

/** The bug this suite must catch: a cursor taken from the clock instead of from committed stamps (as in cursor-race.test.ts). */
class NaiveNowCursorStore extends KnexChangeStore {
  protected override highWaterSql(): string {
    return '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';
  }
}

interface Replica {
  readonly label: string;
  readonly rows: Map<string, Record<string, unknown>>;
  cursor: number | null;
  readonly anomalies: string[];
}

function applyPage(replica: Replica, page: Page): void {
  for (const [table, ch] of Object.entries(page.changes)) {
    for (const row of ch.created) {
      const key = `${table}/${row.id}`;
      if (replica.rows.has(key)) replica.anomalies.push(`${replica.label}: told to create ${key}, which it holds already`);
      replica.rows.set(key, row);
    }
    for (const row of ch.updated) replica.rows.set(`${table}/${row.id}`, row);
    for (const id of ch.deleted) replica.rows.delete(`${table}/${id}`);
  }
  replica.cursor = page.timestamp;
}

async function catchUp(pull: PullFn, userId: string, session: PullSession, replica: Replica): Promise<void> {
  for (let pages = 0; ; pages++) {
    if (pages > 100) throw new Error(`${session.label}: still has_more after 100 pages`);
    const page = await pull(userId, session.device, replica.cursor, session.limit);
    applyPage(replica, page);
    if (!page.has_more) return;
  }
}

interface Env {
  readonly db: Knex;
  readonly settings: SyncSettings;
  readonly pull: PullFn;
  /**
   * Per worker, a pool per push session (PostgreSQL: one connection each, so its pid is known).
   * Workers run interleavings side by side, each on a user of its own: different users share no
   * row and no lock, so one interleaving cannot reach into another. PGlite has one worker.
   */
  readonly workers: ReadonlyArray<readonly Knex[]>;
  readonly isBlocked: IsBlocked | null;
  /** The receipt control: pushes never find a receipt. */
  readonly blindToReceipts?: boolean;
}

interface Outcome {
  readonly problems: string[];
  readonly trace: string[];
  readonly waited: number;
}

let userSerial = 0;

/** Interleavings run side by side on PostgreSQL (see Env.workers). */
const WORKERS = 2;

async function runInterleaving(env: Env, pushPools: readonly Knex[], scenario: Scenario, order: readonly number[]): Promise<Outcome> {
  const userId = `${scenario.key}-${++userSerial}`;
  const problems: string[] = [];
  const trace: string[] = [];

  const seeded: number[] = [];
  const seedPush = new PushChanges(new KnexChangeStore(env.db, testCipher), clock, new NodeSha256Digest(), env.settings);
  for (const seed of scenario.seed) {
    const r = await seedPush.execute({ userId, body: seed.body(seeded), schemaVersion: undefined, deviceId: seed.device });
    if (r.isErr()) throw new Error(`seed push failed: ${r.error.code} ${r.error.message}`);
    seeded.push(r.value.timestamp);
  }

  const replicas = new Map<PullSession, Replica>();
  const pushes = new Map<PushSession, SteppedPush>();
  const live: LiveSession[] = [];
  let pool = 0;
  for (const session of scenario.sessions) {
    if (session.kind === 'pull') {
      const replica: Replica = { label: session.label, rows: new Map(), cursor: null, anomalies: [] };
      if (session.start === 'primed') await catchUp(env.pull, userId, session, replica);
      replicas.set(session, replica);
      live.push({
        pid: undefined,
        next: 0,
        waiting: null,
        queue: [],
        steps: stepNames(session).map((name) => ({
          label: `${session.label}.${name}`,
          run: async () => applyPage(replica, await env.pull(userId, session.device, replica.cursor, session.limit)),
        })),
      });
    } else {
      const db = pushPools[pool++]!;
      const push = new SteppedPush(db, env.settings, { userId, body: session.body(seeded), schemaVersion: undefined, deviceId: session.device }, env.blindToReceipts === true);
      pushes.set(session, push);
      const pid = env.isBlocked ? Number((await db.raw('select pg_backend_pid() as pid')).rows[0].pid) : undefined;
      live.push({
        pid,
        next: 0,
        waiting: null,
        queue: [],
        steps: [
          { label: `${session.label}.begin`, run: () => push.begin() },
          { label: `${session.label}.write`, run: () => push.write() },
          { label: `${session.label}.commit`, run: () => push.commit() },
        ],
      });
    }
  }

  let waited = 0;
  try {
    ({ waited } = await runSchedule(order, live, env.isBlocked, trace));
  } catch (e) {
    await Promise.all([...pushes.values()].map((p) => p.abort()));
    return { problems: [`schedule failed: ${e instanceof Error ? e.message : String(e)}`], trace, waited };
  }

  // The server's final state, as stored (sensitive columns decrypted).
  const stored = new Map<string, Record<string, any>>();
  for (const table of Object.keys(CONTENT)) for (const row of await storedRows(env.db, table, userId)) stored.set(`${table}/${row.id}`, row);
  const active = [...stored].filter(([, row]) => row._status === 'active');

  // Every puller, caught up from its final cursor, holds exactly the server's active rows.
  for (const [session, replica] of replicas) {
    await catchUp(env.pull, userId, session, replica);
    problems.push(...replica.anomalies);
    for (const [key, row] of active) {
      const held = replica.rows.get(key);
      if (!held) {
        problems.push(`${session.label}: missing ${key}`);
        continue;
      }
      if (Number(held['last_modified_at']) !== Number(row.last_modified_at)) problems.push(`${session.label}: stale ${key} (holds version ${held['last_modified_at']}, server has ${row.last_modified_at})`);
      for (const column of CONTENT[key.split('/')[0]!]!) {
        if (held[column] !== row[column]) problems.push(`${session.label}: ${key}.${column} is ${JSON.stringify(held[column])}, server has ${JSON.stringify(row[column])}`);
      }
    }
    for (const key of replica.rows.keys()) {
      if (!active.some(([k]) => k === key)) problems.push(`${session.label}: still holds ${key}, ${stored.has(key) ? 'deleted on the server' : 'unknown to the server'}`);
    }
  }

  // No acknowledged push lost or applied twice.
  const touchedBy = new Map<string, number>();
  for (const session of pushes.keys()) for (const e of session.effects) touchedBy.set(`${e.table}/${e.id}`, (touchedBy.get(`${e.table}/${e.id}`) ?? 0) + 1);
  const answers = new Map<string, PushResponse[]>();
  for (const [session, push] of pushes) {
    const result = push.result;
    if (!result || result.isErr()) {
      problems.push(`${session.label}: push not answered: ${result ? `${result.error.code} ${result.error.message}` : 'no result'}`);
      continue;
    }
    const answer = result.value;
    const pushId = session.body(seeded)['push_id'];
    if (typeof pushId === 'string') answers.set(pushId, [...(answers.get(pushId) ?? []), answer]);
    for (const effect of session.effects) {
      const key = `${effect.table}/${effect.id}`;
      const row = stored.get(key);
      if (!row) {
        problems.push(`${session.label}: lost ${key}`);
        continue;
      }
      if (effect.deleted && row._status !== 'deleted') problems.push(`${session.label}: ${key} not deleted`);
      if (!effect.deleted && row._status !== 'active') problems.push(`${session.label}: ${key} is ${row._status}`);
      for (const [column, value] of Object.entries(effect.values ?? {})) {
        if (row[column] !== value) problems.push(`${session.label}: lost ${key}.${column}: ${JSON.stringify(row[column])} instead of ${JSON.stringify(value)}`);
      }
      const stamp = Number(row.last_modified_at);
      if (effect.created && Number(row.first_written_at) !== stamp) problems.push(`${session.label}: ${key} written again after its create (first ${row.first_written_at}, last ${stamp})`);
      if ((effect.created || touchedBy.get(key) === 1) && stamp > answer.timestamp) problems.push(`${session.label}: ${key} stamped ${stamp}, after the push's answered timestamp ${answer.timestamp}`);
    }
  }
  for (const [pushId, list] of answers) {
    if (list.some((a) => !isDeepStrictEqual(a, list[0]))) problems.push(`push_id ${pushId} answered differently: ${list.map((a) => JSON.stringify(a)).join(' vs ')}`);
  }
  const receipts = Number((await env.db('sync_push_receipts').where({ user_id: userId }).count({ n: '*' }))[0]!['n']);
  const expectedReceipts = new Set([...pushes.keys()].map((s) => s.body(seeded)['push_id']).filter((id) => typeof id === 'string')).size;
  if (receipts !== expectedReceipts) problems.push(`${receipts} push receipts, expected ${expectedReceipts}`);
  const conflicts = Number((await env.db('sync_conflicts').where({ user_id: userId }).count({ n: '*' }))[0]!['n']);
  if (conflicts !== scenario.conflicts) problems.push(`${conflicts} conflict rows, expected ${scenario.conflicts}`);

  return { problems, trace, waited };
}

interface Report {
  readonly runs: number;
  readonly waited: number;
  readonly failures: ReadonlyArray<{ readonly order: string; readonly trace: string; readonly problems: readonly string[] }>;
}

async function runAll(env: Env, scenario: Scenario, orders: readonly number[][]): Promise<Report> {
  const outcomes: Outcome[] = [];
  let next = 0;
  await Promise.all(
    env.workers.map(async (pushPools) => {
      while (next < orders.length) {
        const i = next++;
        outcomes[i] = await runInterleaving(env, pushPools, scenario, orders[i]!);
      }
    }),
  );
  const failures = outcomes.flatMap((o, i) => (o.problems.length ? [{ order: describeOrder(orders[i]!, scenario.sessions), trace: o.trace.join(' '), problems: o.problems }] : []));
  return { runs: outcomes.length, waited: outcomes.reduce((n, o) => n + o.waited, 0), failures };
}

function explain(report: Report, max = 5): string {
  return [
    `${report.failures.length} of ${report.runs} interleavings broke the invariant:`,
    ...report.failures.slice(0, max).map((f) => `  permutation ${f.order}\n    ran as ${f.trace}\n    ${f.problems.join('\n    ')}`),
  ].join('\n');
}

// ----------------------------------------------------------------------------------------------

/** The server's sync settings, as the test servers load them. */
const SETTINGS = loadConfig({ JWT_SECRET: TEST_SECRET, FIELD_ENCRYPTION_KEYS: TEST_FIELD_KEYS }).sync;

/** Pulls a page through the use case the HTTP adapter calls, over the given store. */
function pullThrough(store: ChangeStore): PullFn {
  const useCase = new PullChanges(store, SETTINGS);
  return async (userId, deviceId, cursor, limit) => {
    const query = { last_pulled_at: cursor === null ? undefined : String(cursor), ...(limit ? { limit: String(limit) } : {}) };
    const r = await useCase.execute({ userId, query, schemaVersion: undefined, deviceId });
    if (r.isErr()) throw new Error(`pull failed: ${r.error.code} ${r.error.message}`);
    return r.value as unknown as Page;
  };
}

describeEachDatabase('push-vs-pull interleavings, every schedule', (ctx, name) => {
  let pools: Knex[] = [];
  let env: Env;

  before(async () => {
    const db = ctx.database.db;
    const pull = pullThrough(new KnexChangeStore(db, testCipher));
    if (name === 'postgres') {
      // A push session's own pool, with one connection, on the run's schema: its pid is the session's backend.
      const schema = String((await db.raw('select current_schema() as s')).rows[0].s);
      const workers = Array.from({ length: WORKERS }, () => [0, 1].map(() => openDatabase({ kind: 'postgres', url: process.env['DATABASE_URL']!, poolMax: 1, searchPath: schema })));
      pools = workers.flat();
      env = {
        db,
        settings: SETTINGS,
        pull,
        workers,
        isBlocked: async (pid, peers) => Boolean((await db.raw('select pg_blocking_pids(?) && ?::int[] as blocked', [pid, [...peers]])).rows[0].blocked),
      };
    } else {
      // PGlite: the one connection, and no concurrency to detect.
      env = { db, settings: SETTINGS, pull, workers: [[db, db]], isBlocked: null };
    }
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.destroy()));
  });

  for (const scenario of SCENARIOS) {
    const lengths = scenario.sessions.map((s) => stepNames(s).length);
    const all = interleavings(lengths);
    const runnable = name === 'postgres' ? all : all.filter((order) => isSerial(order, scenario.sessions));
    const shape = scenario.sessions.map((s) => `${s.label}: ${stepNames(s).join(' → ')}`).join('; ');
    const count = name === 'postgres' ? `all ${all.length} interleavings` : `the ${runnable.length} serial of ${all.length} interleavings`;

    it(`${scenario.title} — ${count} (${shape})`, async function () {
      this.timeout(60_000);
      expect(all.length, 'the enumerator').to.equal(multinomial(lengths));
      expect(new Set(all.map((o) => o.join())).size, 'distinct interleavings').to.equal(all.length);
      const report = await runAll(env, scenario, runnable);
      expect(report.failures.length, explain(report)).to.equal(0);
      // Two pushes of one user must really have queued on the lock in some schedules.
      if (name === 'postgres' && scenario.sessions.filter((s) => s.kind === 'push').length > 1) expect(report.waited, 'steps seen waiting on the user lock').to.be.greaterThan(0);
    });
  }

  it('control: with the receipt lookup blind, scenario 6 fails in every interleaving (the replay is applied again)', async function () {
    this.timeout(60_000);
    const scenario = SCENARIOS.find((s) => s.key === 'replay')!;
    const all = interleavings(scenario.sessions.map((s) => stepNames(s).length));
    const runnable = name === 'postgres' ? all : all.filter((order) => isSerial(order, scenario.sessions));
    const report = await runAll({ ...env, blindToReceipts: true }, scenario, runnable);
    expect(report.failures.length, 'interleavings where the blind lookup went unnoticed').to.equal(runnable.length);
  });

  // PGlite: one connection, so no write is ever in flight while a pull reads, and a naive cursor
  // loses nothing there; the control needs PostgreSQL's concurrency.
  describe('needs PostgreSQL (PGlite has one connection: no write is ever in flight while a pull reads)', function () {
    before(function () {
      // Skipped, and counted as pending, on PGlite: PGlite has one connection, so no write is ever in flight while a pull reads.
      if (name !== 'postgres') this.skip();
    });

    it('control: the naive now() cursor of cursor-race.test.ts loses rows in some interleavings of scenarios 1 and 5', async function () {
      this.timeout(60_000);
      const naive = { ...env, pull: pullThrough(new NaiveNowCursorStore(ctx.database.db, testCipher)) };
      for (const key of ['insert', 'paged']) {
        const scenario = SCENARIOS.find((s) => s.key === key)!;
        const report = await runAll(naive, scenario, interleavings(scenario.sessions.map((s) => stepNames(s).length)));
        const missing = report.failures.filter((f) => f.problems.some((p) => p.includes(': missing ')));
        expect(missing.length, `${key}: interleavings where the naive cursor lost a row`).to.be.greaterThan(0);
      }
    });
  });
});
