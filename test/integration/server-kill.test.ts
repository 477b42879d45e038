import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../../src/adapters/crypto/jwt-token-issuer';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { loadConfig } from '../../src/main/config';
import { describeEachDatabase } from '../support/databases';
import { checkAppliedOnce, RetryingPusher, type PlannedPush } from '../support/retrying-pusher';
import { TEST_SECRET } from '../support/server';
import { startServerProcess, type ServerProcess } from '../support/server-process';

/**
 * The server killed for real: a server process takes pushes from several writers at once and is
 * killed with SIGKILL while pushes are in flight (no shutdown, no flush, transactions cut where
 * they stand), then started again on the same database, three times in a run. The writers retry
 * each push with its push_id, as the client does, until it is acknowledged. At the end every
 * write is stored exactly once: nothing acknowledged is lost, nothing is applied twice.
 */

const WRITERS = 6;
const PUSHES = 12;
const PER_PUSH = 25;
const KILLS_AT = [0.15, 0.45, 0.75]; // of all pushes acknowledged

describeEachDatabase('the server killed mid-push (SIGKILL) and restarted', (ctx, name) => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sync-kill-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('applies every push exactly once after its retries, across three kills', async function () {
    this.timeout(240_000);
    let env: Record<string, string>;
    if (name === 'postgres') {
      // The suite's own schema on the test database (test/support/databases.ts).
      const schema = String((await ctx.database.db.raw('select current_schema() as s')).rows[0].s);
      const url = new URL(process.env['DATABASE_URL']!);
      url.searchParams.set('options', `-c search_path=${schema}`);
      env = { DATABASE_URL: url.toString(), DB_POOL_MAX: '8' };
    } else {
      // PGlite lives in the server process: the process owns the folder, and is killed with it.
      env = { PGLITE_DATA_DIR: join(dir, 'pglite') };
    }

    let server: ServerProcess = await startServerProcess(env);
    const events = new EventEmitter();
    let inFlight = 0;
    let acknowledged = 0;
    const inFlightAtKill: number[] = [];
    const config = loadConfig({ JWT_SECRET: TEST_SECRET });
    const writers = Array.from({ length: WRITERS }, (_, w) => {
      const user = `killed-${w % 3}`; // two writers per user: their pushes queue on the user's lock
      return {
        user,
        pusher: new RetryingPusher({
          baseUrl: () => server.url,
          token: signToken(config.jwt, user),
          deviceId: `device-${w}`,
          timeoutMs: 20_000,
          onAttempt: (phase, attempt) => {
            inFlight += phase === 'start' ? 1 : -1;
            if (attempt?.kind === 'ok') acknowledged++;
            events.emit('change');
          },
        }),
        plan: [] as PlannedPush[],
      };
    });
    for (const [w, writer] of writers.entries()) writer.plan = writer.pusher.plan(`w${w}`, PUSHES, PER_PUSH);

    const until = async (condition: () => boolean) => {
      while (!condition()) await once(events, 'change');
    };
    const killer = (async () => {
      for (const share of KILLS_AT) {
        await until(() => acknowledged >= share * WRITERS * PUSHES && inFlight >= 2);
        inFlightAtKill.push(inFlight);
        server.child.kill('SIGKILL');
        await server.exited;
        server = await startServerProcess(env);
      }
    })();
    try {
      await Promise.all([...writers.map((w) => w.pusher.pushAll(w.plan)), killer]);
    } finally {
      await server.stop();
    }

    // Every kill cut pushes in flight, and some of them failed and were retried.
    expect(inFlightAtKill).to.have.length(KILLS_AT.length);
    for (const n of inFlightAtKill) expect(n).to.be.at.least(2);
    const failed = writers.flatMap((w) => w.pusher.attempts).filter((a) => a.kind !== 'ok');
    expect(failed.length, 'attempts the kills cut').to.be.at.least(KILLS_AT.length);

    const db = name === 'postgres' ? ctx.database.db : openDatabase({ kind: 'pglite', dataDir: join(dir, 'pglite') });
    try {
      for (const user of new Set(writers.map((w) => w.user))) {
        const plan = writers.filter((w) => w.user === user).flatMap((w) => w.plan);
        expect(await checkAppliedOnce(db, user, plan), user).to.deep.equal([]);
      }
    } finally {
      if (db !== ctx.database.db) await db.destroy();
    }
  });
});
