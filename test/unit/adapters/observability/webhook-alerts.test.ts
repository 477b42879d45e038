import { expect } from 'chai';
import { pino } from 'pino';
import sinon from 'sinon';
import { FanOutAlerts, WebhookAlerts, type WebhookOptions } from '../../../../src/adapters/observability/alerts';
import type { Alerts, StreakChange } from '../../../../src/application/ports';

/**
 * WebhookAlerts: one JSON POST per alert, each attempt bounded by a timeout, at most `retries`
 * more attempts spaced `retryDelayMs` × attempt, and it never throws (the Alerts contract).
 */

const ALERT: StreakChange = { userId: 'u1', streak: 4, errorCode: 'VALIDATION_FAILED', at: 1_750_000_000_000 };
const URL = 'http://alerts.example/hook';

function capture() {
  const lines: any[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }) };
}

/** A fetch that answers each call with the next status, or runs the next behaviour. */
function fetchAnswering(...answers: Array<number | ((init: RequestInit) => Promise<Response>)>) {
  let i = 0;
  return sinon.spy((_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const a = answers[Math.min(i++, answers.length - 1)]!;
    return typeof a === 'number' ? Promise.resolve(new Response(null, { status: a })) : a(init!);
  });
}

/** Never answers: settles only when the request's signal aborts, as a real fetch does. */
const hang = (init: RequestInit) =>
  new Promise<Response>((_, reject) => {
    init.signal!.addEventListener('abort', () => reject(init.signal!.reason));
  });

function webhook(fetch: sinon.SinonSpy, options: Partial<WebhookOptions> = {}, logger = pino({ level: 'silent' })) {
  return new WebhookAlerts({ url: URL, timeoutMs: 1000, retries: 2, retryDelayMs: 10, fetch: fetch as unknown as typeof globalThis.fetch, ...options }, logger);
}

describe('WebhookAlerts', () => {
  afterEach(() => sinon.restore());

  it('POSTs the alert once, as JSON, when the receiver accepts it', async () => {
    const fetch = fetchAnswering(204);
    await webhook(fetch).userSyncFailing(ALERT);
    expect(fetch.callCount).to.equal(1);
    const [url, init] = fetch.firstCall.args as [string, RequestInit];
    expect(url).to.equal(URL);
    expect(init.method).to.equal('POST');
    expect(init.headers).to.deep.equal({ 'content-type': 'application/json' });
    expect(JSON.parse(init.body as string)).to.deep.equal({ alert: 'sync_failing', user_id: 'u1', streak: 4, error_code: 'VALIDATION_FAILED', at: ALERT.at });
    expect(init.signal).to.be.an.instanceOf(AbortSignal);
  });

  it('retries a refusal, spacing attempts retryDelayMs × attempt, and stops at the first success', async () => {
    const clock = sinon.useFakeTimers();
    const fetch = fetchAnswering(500, 503, 200, 200);
    const sent = webhook(fetch, { retries: 5, retryDelayMs: 100 }).userSyncFailing(ALERT);
    await clock.tickAsync(0);
    expect(fetch.callCount).to.equal(1);
    await clock.tickAsync(99);
    expect(fetch.callCount).to.equal(1);
    await clock.tickAsync(1);
    expect(fetch.callCount).to.equal(2);
    await clock.tickAsync(199);
    expect(fetch.callCount).to.equal(2);
    await clock.tickAsync(1);
    expect(fetch.callCount).to.equal(3);
    await clock.tickAsync(10_000);
    await sent;
    expect(fetch.callCount).to.equal(3);
    expect(new Set(fetch.getCalls().map((c) => (c.args[1] as RequestInit).body)).size).to.equal(1);
  });

  it('gives up after retries + 1 attempts that time out, within a bounded time, without throwing', async () => {
    const { lines, logger } = capture();
    const fetch = fetchAnswering(hang);
    const started = Date.now();
    const outcome = await webhook(fetch, { timeoutMs: 40, retries: 2, retryDelayMs: 5 }, logger).userSyncFailing(ALERT).then(
      () => 'resolved',
      (e) => `threw ${e}`,
    );
    expect(outcome).to.equal('resolved');
    expect(fetch.callCount).to.equal(3);
    expect(Date.now() - started).to.be.below(1000);
    for (const call of fetch.getCalls()) expect((call.args[1] as RequestInit).signal!.aborted).to.equal(true);
    expect(lines.filter((l) => l.level === 40)).to.have.length(3);
    expect(lines.filter((l) => l.level === 50).map((l) => l.user_id)).to.deep.equal(['u1']);
  });

  it('never throws when fetch itself throws or rejects (refused connection, bad URL)', async () => {
    const fetch = fetchAnswering(
      () => {
        throw new TypeError('Invalid URL');
      },
      () => Promise.reject(new TypeError('fetch failed')),
    );
    const outcome = await webhook(fetch, { retries: 3, retryDelayMs: 1 }).userSyncFailing(ALERT).then(
      () => 'resolved',
      (e) => `threw ${e}`,
    );
    expect(outcome).to.equal('resolved');
    expect(fetch.callCount).to.equal(4);
  });

  it('with retries 0, makes exactly one attempt', async () => {
    const fetch = fetchAnswering(500);
    await webhook(fetch, { retries: 0 }).userSyncFailing(ALERT);
    expect(fetch.callCount).to.equal(1);
  });
});

describe('FanOutAlerts', () => {
  it('sends each alert to every channel and waits for all of them', async () => {
    let slowDone = false;
    const fast: Alerts = { userSyncFailing: sinon.stub().resolves() };
    const slow: Alerts = { userSyncFailing: () => new Promise<void>((r) => setTimeout(() => ((slowDone = true), r()), 20)) };
    await new FanOutAlerts([fast, slow]).userSyncFailing(ALERT);
    expect((fast.userSyncFailing as sinon.SinonStub).calledOnceWithExactly(ALERT)).to.equal(true);
    expect(slowDone).to.equal(true);
  });
});
