import { expect } from 'chai';
import { pino } from 'pino';
import { signToken } from '../../src/adapters/crypto/jwt-token-issuer';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { loadConfig } from '../../src/main/config';
import { startServer, type RunningServer } from '../../src/main/server';
import { Rng } from '../support/convergence/rng';
import { clusterUnavailable, PgCluster } from '../support/pg-cluster';
import { checkAppliedOnce, RetryingPusher } from '../support/retrying-pusher';
import { TEST_FIELD_KEYS, TEST_SECRET } from '../support/server';
import { TcpProxy } from '../support/tcp-proxy';

/**
 * Connections that misbehave between the server and PostgreSQL: a TCP proxy in front of a
 * throwaway cluster resets the pool's connections, truncates PostgreSQL's answers and stalls
 * connections (bytes stop, sockets stay open: only the server's query timeout ends the wait).
 * Every request is answered within the client's timeout, failures are retryable, the pool heals
 * by itself, and writers retrying with their push_id store every write exactly once.
 */

const SEED = Number(process.env['SOCKET_FAULTS_SEED'] ?? 11);
const CLIENT_TIMEOUT_MS = 10_000;

describe('socket faults between the server and PostgreSQL', function () {
  this.timeout(240_000);
  const why = clusterUnavailable();
  if (why) {
    it.skip(`needs a throwaway PostgreSQL cluster: ${why}`);
    return;
  }
  let cluster: PgCluster;
  let proxy: TcpProxy;
  let server: RunningServer | undefined;
  before(async () => {
    cluster = await PgCluster.create();
    await cluster.start();
    proxy = await TcpProxy.start('127.0.0.1', cluster.port);
  });
  after(async () => {
    await server?.close().catch(() => undefined);
    await proxy?.close();
    await cluster?.destroy();
  });

  it(`answers every request in time, heals its pool, and stores every push exactly once (seed ${SEED})`, async () => {
    const config = loadConfig({
      JWT_SECRET: TEST_SECRET,
      FIELD_ENCRYPTION_KEYS: TEST_FIELD_KEYS,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`,
      DB_POOL_MAX: '4',
      DB_QUERY_TIMEOUT_MS: '2000',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_IP_PER_MINUTE: '0',
      RATE_LIMIT_USER_PER_MINUTE: '0',
    });
    server = await startServer(config, { logger: pino({ level: 'silent' }) });
    const url = server.url;
    const rng = new Rng(SEED);
    // Faults only on PostgreSQL's answers (down) and the server's statements (up) once the
    // migrations are in: one chunk in 30 is cut, truncated or stalled.
    proxy.faults = ({ length }) => {
      const r = rng.next();
      if (r < 0.015) return 'cut';
      if (r < 0.025) return { truncate: rng.int(0, Math.max(0, length - 1)) };
      if (r < 0.033) return 'stall';
      return 'pass';
    };
    const slowest = { ms: 0 };
    const writers = Array.from({ length: 4 }, (_, w) => {
      let started = 0;
      const pusher = new RetryingPusher({
        baseUrl: () => url,
        token: signToken(config.jwt, `db-flaky-${w}`),
        deviceId: `d${w}`,
        timeoutMs: CLIENT_TIMEOUT_MS,
        retryDelayMs: () => 20,
        onAttempt: (phase) => {
          if (phase === 'start') started = Date.now();
          else slowest.ms = Math.max(slowest.ms, Date.now() - started);
        },
      });
      return { user: `db-flaky-${w}`, pusher, plan: pusher.plan(`g${w}`, 12, 20) };
    });
    await Promise.all(writers.map((w) => w.pusher.pushAll(w.plan)));
    proxy.faults = () => 'pass';

    expect(proxy.counts.cut + proxy.counts.truncated, 'connections cut or truncated').to.be.greaterThan(0);
    expect(proxy.counts.stalled, 'connections stalled').to.be.greaterThan(0);
    const attempts = writers.flatMap((w) => w.pusher.attempts);
    // Every request was answered: none reached the client's timeout, and every failure was the server's retryable answer.
    for (const a of attempts) if (a.kind !== 'ok') expect(a, JSON.stringify(a)).to.deep.include({ kind: 'http', code: 'UNAVAILABLE' });
    expect(attempts.some((a) => a.kind === 'http')).to.equal(true);

    // The pool healed: with the faults gone, reads and writes work at once.
    expect((await fetch(`${url}/readyz`)).status).to.equal(200);
    const check = openDatabase({ kind: 'postgres', url: cluster.url, poolMax: 1 });
    try {
      for (const w of writers) expect(await checkAppliedOnce(check, w.user, w.plan), w.user).to.deep.equal([]);
    } finally {
      await check.destroy();
    }
  });
});
