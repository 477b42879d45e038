import { expect } from 'chai';
import { errAsync, okAsync, ResultAsync } from 'neverthrow';
import { pino } from 'pino';
import sinon from 'sinon';
import { BatchingSyncLog, type BatchingOptions } from '../../../../src/adapters/observability/batching-sync-log';
import type { Alerts, AppendOutcome, Metrics, StreakChange, SyncLogEntry, SyncLogStore } from '../../../../src/application/ports';
import { syncError, type SyncError } from '../../../../src/domain';

/**
 * BatchingSyncLog (the SyncLog port's contract, src/application/ports/sync-log.ts): `record` returns
 * at once and never throws; entries are written in batches, in order; the queue is bounded and what
 * it drops is counted; a failed write is counted and never reaches the caller; `flush` waits.
 */

function entry(n: number, over: Partial<SyncLogEntry> = {}): SyncLogEntry {
  return {
    userId: 'u1',
    syncType: 'push',
    startedAt: 1000 + n,
    completedAt: 1001 + n,
    durationMs: 1,
    recordsSynced: n,
    recordsByTable: { ideas: n },
    conflicts: 0,
    bytesIn: 10,
    bytesOut: 20,
    status: 'success',
    errorCode: null,
    errorMessage: null,
    deviceId: null,
    appVersion: null,
    schemaVersion: null,
    requestId: `r${n}`,
    ...over,
  };
}

const failure = (n: number, userId = 'u1') => entry(n, { userId, status: 'failure', errorCode: 'VALIDATION_FAILED', errorMessage: 'bad' });

/** An in-memory store that keeps streaks as the real one does; `hold()` makes writes wait. */
class MemorySyncLogStore implements SyncLogStore {
  readonly batches: SyncLogEntry[][] = [];
  readonly streaks = new Map<string, number>();
  failing = false;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = null;
  }

  append(entries: readonly SyncLogEntry[]): ResultAsync<AppendOutcome, SyncError> {
    const gate = this.gate;
    return ResultAsync.fromSafePromise(gate ?? Promise.resolve()).andThen(() => {
      if (this.failing) return errAsync(syncError('UNAVAILABLE', 'database down'));
      this.batches.push([...entries]);
      const changes: StreakChange[] = [];
      for (const e of entries) {
        const streak = e.status === 'failure' ? (this.streaks.get(e.userId) ?? 0) + 1 : 0;
        this.streaks.set(e.userId, streak);
        if (e.status === 'failure') changes.push({ userId: e.userId, streak, errorCode: e.errorCode, at: e.completedAt });
      }
      return okAsync({ streaks: changes, rejected: [] });
    });
  }

  written(): string[] {
    return this.batches.flat().map((e) => e.requestId!);
  }
}

function metricsSpy() {
  return {
    observeRequest: sinon.spy(),
    observeSync: sinon.spy(),
    syncLogDropped: sinon.spy(),
    syncLogWriteFailed: sinon.spy(),
    liveConnections: sinon.spy(),
    livePokesSent: sinon.spy(),
    liveDropped: sinon.spy(),
    render: sinon.stub().resolves({ contentType: 'text/plain', body: '' }),
  } satisfies Metrics;
}

const dropped = (m: ReturnType<typeof metricsSpy>) => m.syncLogDropped.getCalls().reduce((a, c) => a + (c.args[0] as number), 0);
const ticks = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('BatchingSyncLog', () => {
  let store: MemorySyncLogStore;
  let metrics: ReturnType<typeof metricsSpy>;
  let alerts: { userSyncFailing: sinon.SinonStub };
  const make = (options: Partial<BatchingOptions> = {}) =>
    new BatchingSyncLog(store, alerts as Alerts, metrics, pino({ level: 'silent' }), { maxQueue: 100, batchSize: 100, flushIntervalMs: 60_000, ...options });

  beforeEach(() => {
    store = new MemorySyncLogStore();
    metrics = metricsSpy();
    alerts = { userSyncFailing: sinon.stub().resolves() };
  });
  afterEach(() => sinon.restore());

  it('writes in batches of batchSize, in the order recorded, with nothing left after flush', async () => {
    const log = make({ batchSize: 3 });
    for (let i = 0; i < 7; i++) log.record(entry(i));
    await log.flush();
    expect(store.batches.map((b) => b.map((e) => e.requestId))).to.deep.equal([['r0', 'r1', 'r2'], ['r3', 'r4', 'r5'], ['r6']]);
    expect(dropped(metrics)).to.equal(0);
  });

  it('writes a batch that is not full once flushIntervalMs has passed', async () => {
    const clock = sinon.useFakeTimers();
    const log = make({ flushIntervalMs: 1000 });
    log.record(entry(0));
    log.record(entry(1));
    await clock.tickAsync(999);
    expect(store.batches).to.deep.equal([]);
    await clock.tickAsync(1);
    expect(store.written()).to.deep.equal(['r0', 'r1']);
  });

  it('holds at most maxQueue entries while the writer is stuck, dropping and counting the rest', async () => {
    const log = make({ maxQueue: 3, batchSize: 1 });
    store.hold();
    log.record(entry(0)); // taken by the writer, which now waits
    for (let i = 1; i <= 6; i++) expect(() => log.record(entry(i))).not.to.throw();
    expect(dropped(metrics)).to.equal(3);
    expect(metrics.syncLogDropped.alwaysCalledWithExactly(1)).to.equal(true);
    store.release();
    await log.flush();
    expect(store.written()).to.deep.equal(['r0', 'r1', 'r2', 'r3']);
    expect(metrics.syncLogWriteFailed.called).to.equal(false);
  });

  it('never lets a failing store reach record or flush: the batch is counted as dropped and later entries are written', async () => {
    const log = make({ batchSize: 2 });
    store.failing = true;
    for (let i = 0; i < 5; i++) expect(() => log.record(entry(i))).not.to.throw();
    await log.flush();
    expect(store.batches).to.deep.equal([]);
    expect(metrics.syncLogWriteFailed.callCount).to.equal(3);
    expect(dropped(metrics)).to.equal(5);

    store.failing = false;
    log.record(entry(5));
    await log.flush();
    expect(store.written()).to.deep.equal(['r5']);
  });

  it('flush waits for the write in progress and everything queued behind it', async () => {
    const log = make({ batchSize: 1 });
    store.hold();
    log.record(entry(0));
    log.record(entry(1));
    let done = false;
    const flushed = log.flush().then(() => (done = true));
    await ticks();
    expect(done).to.equal(false);
    store.release();
    await flushed;
    expect(store.written()).to.deep.equal(['r0', 'r1']);
  });

  it('flush of an idle log resolves at once and writes nothing', async () => {
    await make().flush();
    expect(store.batches).to.deep.equal([]);
  });

  it('raises one alert when a streak reaches 4, and another only after a success broke it', async () => {
    const log = make({ batchSize: 3 });
    for (let i = 0; i < 6; i++) log.record(failure(i));
    log.record(failure(50, 'u2'));
    await log.flush();
    expect(alerts.userSyncFailing.callCount).to.equal(1);
    expect(alerts.userSyncFailing.firstCall.args[0]).to.deep.equal({ userId: 'u1', streak: 4, errorCode: 'VALIDATION_FAILED', at: 1004 });

    log.record(entry(10));
    for (let i = 11; i < 15; i++) log.record(failure(i));
    await log.flush();
    expect(alerts.userSyncFailing.callCount).to.equal(2);
    expect(alerts.userSyncFailing.secondCall.args[0]).to.include({ userId: 'u1', streak: 4 });
  });

  it('flush waits for the alerts a write raised', async () => {
    let deliver!: () => void;
    alerts.userSyncFailing.returns(new Promise<void>((r) => (deliver = r)));
    const log = make();
    for (let i = 0; i < 4; i++) log.record(failure(i));
    let done = false;
    const flushed = log.flush().then(() => (done = true));
    await ticks();
    expect(alerts.userSyncFailing.calledOnce).to.equal(true);
    expect(done).to.equal(false);
    deliver();
    await flushed;
    expect(done).to.equal(true);
  });

  it('survives an alert channel that throws: no unhandled rejection, and the entries after it are still written', async () => {
    const unhandled: unknown[] = [];
    const listeners = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    const capture = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', capture);
    try {
      alerts.userSyncFailing.rejects(new Error('alert channel defect'));
      const log = make({ batchSize: 4 });
      for (let i = 0; i < 4; i++) log.record(failure(i)); // the 4th fills the batch: written at once
      log.record(entry(9));
      await ticks(20);
      await log.flush().catch((e) => unhandled.push(e));
      expect(unhandled, 'rejections that escaped').to.deep.equal([]);
      expect(store.written()).to.deep.equal(['r0', 'r1', 'r2', 'r3', 'r9']);
    } finally {
      process.removeListener('unhandledRejection', capture);
      for (const l of listeners) process.on('unhandledRejection', l);
    }
  });

  it('keeps writing while an alert is slow to deliver (a webhook timing out must not hold up the log)', async () => {
    let deliver!: () => void;
    alerts.userSyncFailing.callsFake(() => new Promise<void>((r) => (deliver = r)));
    const log = make({ batchSize: 4 });
    for (let i = 0; i < 4; i++) log.record(failure(i)); // raises the alert, which hangs
    await ticks();
    expect(alerts.userSyncFailing.calledOnce).to.equal(true);
    for (let i = 10; i < 14; i++) log.record(entry(i)); // a second batch, written while the alert waits
    await ticks();
    expect(store.written()).to.deep.equal(['r0', 'r1', 'r2', 'r3', 'r10', 'r11', 'r12', 'r13']);
    deliver();
    await log.flush();
  });
});
