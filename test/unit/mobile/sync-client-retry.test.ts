import { expect } from 'chai';
import { networkFailure, timeoutFailure } from '../../../src/domain';
import type { TransportFailure } from '../../../mobile/src/ports';
import { openClient, type ClientHarness, type HarnessOptions } from './client-harness';

/**
 * Retries (spec §5): Fibonacci delays 1, 1, 2, 3, 5, 8, 13, 21, 34, 55 s then 55 s, capped, only for
 * retryable failures (spec §4.5); a failure the client cannot cure by waiting stops in 'error'.
 */
describe('SyncClient retries', () => {
  let h: ClientHarness;
  const open = async (o: HarnessOptions = {}) => (h = await openClient(o));
  afterEach(async () => {
    await h?.close();
  });

  const SECOND = 1000;
  const pulls = () => h.transport.calls.filter((c) => c.kind === 'pull').length;

  /** Asserts that the next request comes exactly `ms` after the last one, and not a millisecond before. */
  async function expectNextAttemptAfter(ms: number): Promise<void> {
    const before = h.transport.calls.length;
    await h.tick(ms - 1);
    expect(h.transport.calls.length, `a request came before ${ms} ms`).to.equal(before);
    await h.tick(1);
    expect(h.transport.calls.length, `no request at ${ms} ms`).to.be.greaterThan(before);
  }

  it('waits 1, 1, 2, 3, 5, 8, 13, 21, 34, 55 s between attempts, then 55 s each time', async () => {
    await open();
    h.transport.failNext(Infinity, networkFailure('connection refused'));
    h.client.start();
    await h.flush();
    expect(pulls()).to.equal(1);
    for (const s of [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 55, 55]) await expectNextAttemptAfter(s * SECOND);
    expect(pulls()).to.equal(13);
    expect(h.client.getStatus()).to.include({ state: 'error' });
    expect(h.client.getStatus().lastError).to.include({ kind: 'NETWORK_ERROR', retryable: true });
  });

  it('never waits longer than retryCapMs', async () => {
    await open({ client: { retryCapMs: 3 * SECOND } });
    h.transport.failNext(Infinity, timeoutFailure('no answer'));
    h.client.start();
    await h.flush();
    for (const s of [1, 1, 2, 3, 3, 3]) await expectNextAttemptAfter(s * SECOND);
  });

  it('stops retrying once a sync succeeds, and starts again from 1 s after the next failure', async () => {
    await open();
    await h.client.local.create('ideas', { id: 'i1', text: 'waiting for the network' });
    h.transport.failNext(3, networkFailure('down'));
    h.client.start();
    await h.flush();
    for (const s of [1, 1, 2]) await expectNextAttemptAfter(s * SECOND);
    expect(h.client.getStatus()).to.include({ state: 'idle', lastError: null, pending: 0 });
    expect(h.serverIds('ideas')).to.deep.equal(['i1']);
    const after = h.transport.calls.length;
    await h.tick(10 * 60 * SECOND);
    expect(h.transport.calls.length, 'retried after a success').to.equal(after);

    h.transport.failNext(1, networkFailure('down again'));
    expect((await h.client.sync()).isErr()).to.equal(true);
    await expectNextAttemptAfter(1 * SECOND);
    expect(h.client.getStatus().state).to.equal('idle');
  });

  it('waits as long as a 429 asks when that is longer than the backoff', async () => {
    await open();
    h.transport.failNext(1, { kind: 'SERVER_ERROR', retryable: true, message: 'slow down', code: 'RATE_LIMITED', retryAfterSeconds: 30, status: 429 });
    h.client.start();
    await h.flush();
    await expectNextAttemptAfter(30 * SECOND);
    expect(h.client.getStatus().state).to.equal('idle');
  });

  it('caps a Retry-After longer than five minutes at five minutes', async () => {
    await open();
    h.transport.failNext(1, { kind: 'SERVER_ERROR', retryable: true, message: 'come back tomorrow', code: 'RATE_LIMITED', retryAfterSeconds: 86_400, status: 429 });
    h.client.start();
    await h.flush();
    await expectNextAttemptAfter(5 * 60 * SECOND);
  });

  const retryable: Array<[string, TransportFailure]> = [
    ['NETWORK_ERROR', networkFailure('connection reset')],
    ['TIMEOUT', timeoutFailure('the server did not answer in time')],
    ['SERVER_ERROR 503', { kind: 'SERVER_ERROR', retryable: true, message: 'database restarting', code: 'UNAVAILABLE', status: 503 }],
  ];
  for (const [title, failure] of retryable) {
    it(`retries ${title}, reporting it meanwhile, and delivers the writes`, async () => {
      await open();
      await h.client.local.create('captures', { id: 'c1', type: 'text', raw_content: 'retry me' });
      h.transport.failNext(1, failure, { kind: 'push' });
      h.client.start();
      await h.flush();
      expect(h.client.getStatus()).to.deep.include({ state: 'error', lastError: failure, pending: 1 });
      await expectNextAttemptAfter(1 * SECOND);
      expect(h.serverIds('captures')).to.deep.equal(['c1']);
      expect(h.client.getStatus()).to.include({ state: 'idle', lastError: null, pending: 0 });
    });
  }

  const final: Array<[string, TransportFailure]> = [
    ['AUTH_ERROR (401)', { kind: 'AUTH_ERROR', retryable: false, message: 'token expired', code: 'TOKEN_EXPIRED', status: 401 }],
    ['CONFLICT (409)', { kind: 'CONFLICT', retryable: false, message: 'push_id reused', code: 'PUSH_ID_REUSED', status: 409 }],
    ['SCHEMA_MISMATCH (426)', { kind: 'SCHEMA_MISMATCH', retryable: false, message: 'update the app', code: 'SCHEMA_VERSION_UNSUPPORTED', status: 426 }],
    ['a non-retryable SERVER_ERROR (wrong shape)', { kind: 'SERVER_ERROR', retryable: false, message: 'the server answered with an unexpected shape', status: 200 }],
  ];
  for (const [title, failure] of final) {
    // A refused token shows as 'unauthenticated' (the transport has already tried a refreshed one).
    const state = failure.kind === 'AUTH_ERROR' ? 'unauthenticated' : 'error';
    it(`does not retry ${title}: sync() returns it and the status shows '${state}'`, async () => {
      await open();
      h.client.start();
      await h.flush();
      h.transport.failNext(1, failure);
      const result = await h.client.sync();
      expect(result.isErr() && result.error).to.deep.equal(failure);
      expect(h.client.getStatus()).to.deep.include({ state, lastError: failure });
      const calls = h.transport.calls.length;
      await h.tick(10 * 60 * SECOND);
      expect(h.transport.calls.length, 'retried a failure that waiting cannot cure').to.equal(calls);
      expect(h.client.getStatus().state).to.equal(state);
    });
  }

  it('stops at the server\'s own 426 when the app\'s schema is too new, and keeps the writes', async () => {
    await open({ schemaVersion: 99 });
    await h.client.local.create('ideas', { id: 'i1', text: 'kept for later' });
    const result = await h.client.sync();
    expect(result.isErr() && result.error).to.include({ kind: 'SCHEMA_MISMATCH', retryable: false, status: 426 });
    expect(h.client.getStatus()).to.include({ state: 'error', pending: 1 });
    expect(await h.client.local.get('ideas', 'i1')).to.include({ text: 'kept for later' });
  });
});
