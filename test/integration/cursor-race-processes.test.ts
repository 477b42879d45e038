import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { signToken } from '../../src/adapters/crypto/jwt-token-issuer';
import { loadConfig } from '../../src/main/config';
import { describeEachDatabase } from '../support/databases';
import { applyPage, serverState, type ReplayPage } from '../support/cursor-replay';
import { ApiClient, TEST_FIELD_KEYS, TEST_SECRET } from '../support/server';

/**
 * The cursor race of cursor-race.test.ts, across server processes: two real server processes
 * (`node --import tsx src/main/server.ts`) on one PostgreSQL database. Pushers write through
 * one process or the other, "slow" writers hold a stamped transaction open for 30 ms on a
 * connection of their own, and every puller sends each page to the other process than the page
 * before, so a cursor handed out by one process is always redeemed at the other. After a bounded
 * run, each puller's replayed stream must equal the server's final state, with zero missing rows.
 */

interface Child {
  url: string;
  child: ChildProcessWithoutNullStreams;
  exited: Promise<void>;
  output: () => string;
}

const USER = 'racer';
const RUN_MS = 2000;

async function startProcess(env: Record<string, string>): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/server.ts'], {
    env: { PATH: process.env['PATH'] ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', JWT_SECRET: TEST_SECRET, FIELD_ENCRYPTION_KEYS: TEST_FIELD_KEYS, RATE_LIMIT_IP_PER_MINUTE: '0', RATE_LIMIT_USER_PER_MINUTE: '0', ...env },
    stdio: 'pipe',
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const until = Date.now() + 20_000;
  for (;;) {
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) return { url: m[1]!, child, exited, output: () => out };
    if (Date.now() > until || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`the server process did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeEachDatabase('pull cursor across server processes', (ctx, name) => {
  if (name !== 'postgres') {
    // PGlite is embedded in the one process that opened it: no second server process can share
    // its database, so there is no cross-process race to run.
    it.skip('needs PostgreSQL: PGlite lives inside one server process and cannot be shared by two');
    return;
  }

  let processes: Child[] = [];
  before(async function () {
    this.timeout(60_000);
    // The suite's own schema on the test database (test/support/databases.ts): the child
    // processes connect with it as their search_path.
    const schema = String((await ctx.database.db.raw('select current_schema() as s')).rows[0].s);
    const url = new URL(process.env['DATABASE_URL']!);
    url.searchParams.set('options', `-c search_path=${schema}`);
    // One after the other: each runs the (already applied) migrations as it starts.
    processes = [];
    for (let i = 0; i < 2; i++) processes.push(await startProcess({ DATABASE_URL: url.toString(), DB_POOL_MAX: '5' }));
  });
  after(async () => {
    for (const p of processes) {
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
      await p.exited;
      clearTimeout(timer);
    }
  });

  it("loses no row when writers and pullers talk to different processes: every puller's replay equals the final state", async function () {
    this.timeout(30_000);
    const db = ctx.database.db;
    const token = signToken(loadConfig({ JWT_SECRET: TEST_SECRET, FIELD_ENCRYPTION_KEYS: TEST_FIELD_KEYS }).jwt, USER);
    const at = (i: number, deviceId?: string) => new ApiClient(processes[i % processes.length]!.url, token, deviceId);
    const deadline = Date.now() + RUN_MS;
    let writes = 0;
    const pagesAt = [0, 0];

    const pusher = async (n: number) => {
      const client = at(n, `device-${n}`);
      let seq = 0;
      const mine: string[] = [];
      while (Date.now() < deadline) {
        const created = Array.from({ length: 1 + (seq % 3) }, () => ({ id: `p${n}-${seq++}`, text: `from ${n}` }));
        const updated = mine.length ? [{ id: mine[seq % mine.length]!, text: `edit ${seq}` }] : [];
        const deleted = mine.length > 5 && seq % 7 === 0 ? [mine.shift()!] : [];
        const r = await client.push({ changes: { ideas: { created, updated: updated.filter((u) => !deleted.includes(u.id)), deleted } } });
        expect(r.status, JSON.stringify(r.body)).to.equal(200);
        mine.push(...created.map((c) => c.id));
        writes += created.length;
      }
    };

    const slowWriter = async (n: number) => {
      let seq = 0;
      while (Date.now() < deadline) {
        await db.transaction(async (trx) => {
          await trx('todos').insert({ user_id: USER, id: `s${n}-${seq++}`, description: 'slow', created_at: 1 });
          await trx.raw('select pg_sleep(0.03)');
        });
        writes++;
      }
    };

    /** Each page from the other process than the page before. */
    const puller = (first: number) => {
      let turn = first;
      return async (cursor: number | null): Promise<ReplayPage> => {
        const i = turn++ % processes.length;
        pagesAt[i]!++;
        const r = await at(i).pull({ last_pulled_at: cursor, limit: 20 });
        expect(r.status, JSON.stringify(r.body)).to.equal(200);
        return r.body as ReplayPage;
      };
    };

    const pullers = [0, 1, 0].map((first) => ({ pull: puller(first), replay: new Map<string, number>(), cursor: null as number | null, pulls: 0 }));
    const runPuller = async (p: (typeof pullers)[number]) => {
      while (Date.now() < deadline) {
        const page = await p.pull(p.cursor);
        applyPage(p.replay, page);
        p.cursor = page.timestamp;
        p.pulls++;
      }
    };
    await Promise.all([pusher(0), pusher(1), pusher(2), slowWriter(1), slowWriter(2), ...pullers.map(runPuller)]);

    // Writers have stopped: catch every puller up from where it stopped, then compare.
    const truth = await serverState(db, USER);
    const missing: string[][] = [];
    for (const p of pullers) {
      for (;;) {
        const page = await p.pull(p.cursor);
        applyPage(p.replay, page);
        p.cursor = page.timestamp;
        if (!page.has_more) break;
      }
      const diff: string[] = [];
      for (const [key, stamp] of truth) if (p.replay.get(key) !== stamp) diff.push(key);
      for (const key of p.replay.keys()) if (!truth.has(key)) diff.push(`extra ${key}`);
      missing.push(diff);
    }
    expect(writes, 'writes').to.be.greaterThan(20);
    expect(pullers.reduce((n, p) => n + p.pulls, 0), 'pulls').to.be.greaterThan(20);
    expect(pagesAt[0], 'pages served by process 1').to.be.greaterThan(5);
    expect(pagesAt[1], 'pages served by process 2').to.be.greaterThan(5);
    expect(missing).to.deep.equal([[], [], []]);
    for (const p of processes) expect(p.output(), 'server process output').not.to.match(/"level":(50|60)/);
  });
});
