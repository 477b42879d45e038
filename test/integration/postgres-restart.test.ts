import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import { pino } from 'pino';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { loadConfig } from '../../src/main/config';
import { startServer, type RunningServer } from '../../src/main/server';
import { clusterUnavailable, PgCluster } from '../support/pg-cluster';
import { checkAppliedOnce, RetryingPusher, type Attempt, type PlannedPush } from '../support/retrying-pusher';
import { TEST_FIELD_KEYS, TEST_SECRET } from '../support/server';
import { signToken } from '../../src/adapters/crypto/jwt-token-issuer';

/**
 * PostgreSQL goes away under load: on a throwaway cluster of the test's own (never the machine's
 * shared server), writers push through the server while PostgreSQL is stopped in immediate mode
 * (a crash: every connection cut, no checkpoint) and started again. During the outage /readyz
 * answers 503 and sync requests fail fast with a retryable code; afterwards the pool recovers by
 * itself and every acknowledged write is there, exactly once.
 */

const WRITERS = 4;
const PUSHES = 10;
const PER_PUSH = 20;
const CLIENT_TIMEOUT_MS = 15_000;

describe('PostgreSQL stopped (immediate) and started again under load', function () {
  this.timeout(240_000);
  let cluster: PgCluster | undefined;
  let server: RunningServer | undefined;

  const why = clusterUnavailable();
  if (why) {
    it.skip(`needs a throwaway PostgreSQL cluster: ${why}`);
    return;
  }
  before(async () => {
    cluster = await PgCluster.create();
    await cluster.start();
  });
  after(async () => {
    await server?.close().catch(() => undefined);
    await cluster?.destroy();
  });

  it('answers 503 while it is down, fails requests fast and retryably, recovers by itself, and loses nothing', async () => {
    const config = loadConfig({ JWT_SECRET: TEST_SECRET, FIELD_ENCRYPTION_KEYS: TEST_FIELD_KEYS, DATABASE_URL: cluster!.url, DB_POOL_MAX: '6', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', RATE_LIMIT_IP_PER_MINUTE: '0', RATE_LIMIT_USER_PER_MINUTE: '0' });
    server = await startServer(config, { logger: pino({ level: 'silent' }) });
    const url = server.url;

    const events = new EventEmitter();
    let acknowledged = 0;
    let down = false;
    const duringOutage: Array<Attempt & { ms: number }> = [];
    const writers = Array.from({ length: WRITERS }, (_, w) => {
      let started = 0;
      const pusher: RetryingPusher = new RetryingPusher({
        baseUrl: () => url,
        token: signToken(config.jwt, `outage-${w}`),
        deviceId: `device-${w}`,
        timeoutMs: CLIENT_TIMEOUT_MS,
        retryDelayMs: () => 100,
        onAttempt: (phase, attempt) => {
          if (phase === 'start') started = Date.now();
          else if (down) duringOutage.push({ ...attempt!, ms: Date.now() - started });
          if (attempt?.kind === 'ok') acknowledged++;
          events.emit('change');
        },
      });
      return { user: `outage-${w}`, pusher, plan: pusher.plan(`o${w}`, PUSHES, PER_PUSH) as PlannedPush[] };
    });
    const until = async (condition: () => boolean) => {
      while (!condition()) await once(events, 'change');
    };
    const ready = async () => (await fetch(`${url}/readyz`)).status;

    const outage = (async () => {
      await until(() => acknowledged >= (WRITERS * PUSHES) / 3);
      expect(await ready()).to.equal(200);
      down = true;
      await cluster!.stop('immediate');
      // Down: readiness says so, and requests keep failing (retryably) for a while.
      let status = await ready();
      while (status !== 503) status = await ready();
      await until(() => duringOutage.filter((a) => a.kind !== 'ok').length >= WRITERS * 2);
      await cluster!.start();
      down = false;
      while ((await ready()) !== 200) await new Promise((r) => setTimeout(r, 100)); // polled as a load balancer does
    })();
    await Promise.all([...writers.map((w) => w.pusher.pushAll(w.plan)), outage]);

    // During the outage every request was answered (no client timeout) with a retryable failure.
    expect(duringOutage.filter((a) => a.kind !== 'ok').length).to.be.at.least(WRITERS * 2);
    for (const a of duringOutage) {
      // 'ok': a push that committed just before the crash.
      if (a.kind === 'http') expect(a.code, JSON.stringify(a)).to.equal('UNAVAILABLE');
      else if (a.kind !== 'ok') expect.fail(`a request during the outage was not answered: ${JSON.stringify(a)}`);
    }

    const check = openDatabase({ kind: 'postgres', url: cluster!.url, poolMax: 1 });
    try {
      for (const w of writers) expect(await checkAppliedOnce(check, w.user, w.plan), w.user).to.deep.equal([]);
    } finally {
      await check.destroy();
    }
  });
});
