import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { migrateToLatest } from '../../src/adapters/postgres/migrations';
import { clusterUnavailable, PgCluster } from '../support/pg-cluster';
import { startTestServer, type ApiClient, type TestServer } from '../support/server';

/**
 * Pulls from a hot standby (DATABASE_READ_URL), on real streaming replication: a throwaway primary
 * and a standby made from it by pg_basebackup -R, on ports of their own (never the machine's
 * shared server), one pair for the whole file. Pushers write through the primary while pullers
 * read through the standby, and through the standby and the primary in turn; the standby's replay
 * is paused, it is stopped and started, and every puller must end with every record exactly once.
 */

const PG_BIN = process.env['PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
const IDEAS_PER_PUSH = 3;
/** How long a puller may take to catch up once the pushes are done (the standby replays in ms). */
const CATCH_UP_MS = 15_000;

/** sync_pull_reads_total by database, from a server's metrics listener. */
async function reads(server: TestServer): Promise<{ primary: number; replica: number }> {
  const text = await (await fetch(`${server.metricsUrl}/metrics`)).text();
  const count = (side: string) => Number(new RegExp(`^sync_pull_reads_total\\{database="${side}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { primary: count('primary'), replica: count('replica') };
}

/** A device that only pulls: every idea it was sent, in order, and its cursor. */
class Puller {
  readonly ids: string[] = [];
  cursor: number | null = null;
  pulls = 0;
  constructor(readonly via: (n: number) => ApiClient) {}

  async pull(): Promise<{ since: number | null; timestamp: number; rows: number; served: number }> {
    const since = this.cursor;
    const served = this.pulls++;
    const r = await this.via(served).pull({ last_pulled_at: since });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    const ideas = r.body.changes.ideas;
    expect(ideas.updated, 'only new ideas are pushed').to.deep.equal([]);
    this.ids.push(...ideas.created.map((i: { id: string }) => i.id));
    expect(r.body.timestamp, 'a cursor never goes back').to.be.at.least(since ?? 0);
    this.cursor = r.body.timestamp;
    return { since, timestamp: r.body.timestamp, rows: ideas.created.length, served };
  }

  /** Pulls until it has all of `expected` (or the time is up), then checks: each exactly once. */
  async catchUp(expected: readonly string[]): Promise<void> {
    const deadline = Date.now() + CATCH_UP_MS;
    while (new Set(this.ids).size < expected.length && Date.now() < deadline) await this.pull();
    expect(this.ids.length - new Set(this.ids).size, 'ideas pulled twice').to.equal(0);
    expect([...this.ids].sort()).to.deep.equal([...expected].sort());
  }
}

describe('pulls from a hot standby (DATABASE_READ_URL), on real streaming replication', function () {
  this.timeout(60_000);
  const why = clusterUnavailable() ?? (existsSync(join(PG_BIN, 'pg_basebackup')) ? null : `no pg_basebackup in ${PG_BIN}`);
  if (why) {
    it.skip(`needs a throwaway primary and standby: ${why}`);
    return;
  }

  let primary: PgCluster | undefined;
  let standby: PgCluster | undefined;
  let primaryDb: Knex | undefined;
  let standbyDb: Knex | undefined;
  /** Every query on the primary. */
  let onPrimary: TestServer;
  /** Pulls on the standby, with a bound so loose that a paused standby keeps serving. */
  let onReplica: TestServer;
  const servers: TestServer[] = [];

  const start = async (env: Record<string, string> = {}) => {
    const s = await startTestServer(primaryDb!, { DATABASE_URL: primary!.url, ...env });
    servers.push(s);
    return s;
  };
  const replayPaused = async (paused: boolean) => {
    await standbyDb!.raw(paused ? 'SELECT pg_wal_replay_pause()' : 'SELECT pg_wal_replay_resume()');
  };
  /** The user's newest stamp as the standby has it (the mark a pull there would give). */
  const standbyMark = async (user: string) => Number((await standbyDb!('sync_users').where({ user_id: user }).first('last_ts'))?.last_ts ?? 0);

  before(async () => {
    primary = await PgCluster.createPrimary();
    await primary.start();
    primaryDb = openDatabase({ kind: 'postgres', url: primary.url, poolMax: 10 });
    await migrateToLatest(primaryDb);
    standby = await PgCluster.standbyOf(primary);
    await standby.start();
    // Its connections die with the stopped standby: knex's warnings about that are expected here.
    standbyDb = openDatabase({ kind: 'postgres', url: standby.url, poolMax: 4 }, { warn: () => undefined, error: () => undefined });
    onPrimary = await start();
    onReplica = await start({ DATABASE_READ_URL: standby.url, SYNC_REPLICA_MAX_LAG_MS: '60000' });
  });
  after(async () => {
    for (const s of servers) await s.close();
    await standbyDb?.destroy();
    await primaryDb?.destroy();
    await standby?.destroy();
    await primary?.destroy();
  });

  /** Pushes `pushes` batches of new ideas for `user` as `device`; onPushed after each. */
  const pusher = async (user: string, device: string, pushes: number, onPushed: () => Promise<void>) => {
    const client = onPrimary.client(user, device);
    const ids: string[] = [];
    for (let p = 0; p < pushes; p++) {
      const created = Array.from({ length: IDEAS_PER_PUSH }, (_, k) => ({ id: `${device}-${p}-${k}`, text: `idea ${p}.${k}` }));
      const r = await client.push({ changes: { ideas: { created, updated: [], deleted: [] } } });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      ids.push(...created.map((c) => c.id));
      await onPushed();
    }
    return ids;
  };

  it('pushers on the primary, pullers on the standby and pullers alternating standby / primary while its replay is paused: nothing missed, nothing twice', async () => {
    const USERS = ['alt-a', 'alt-b'];
    const PUSHERS = 2;
    const PUSHES = 24;
    const total = USERS.length * PUSHERS * PUSHES;
    let pushed = 0;
    let paused = false;
    let pausedFor = 0;
    const before = await reads(onReplica);
    /** Replica pulls of an alternating puller whose cursor (from the primary) was above the standby's mark. */
    let behind = 0;
    // The replay is paused for the middle third of the pushes: the standby lags by whole pushes.
    const onPushed = async () => {
      pushed++;
      if (!paused && pausedFor === 0 && pushed >= total / 3) {
        paused = true;
        pausedFor = pushed;
        await replayPaused(true);
      } else if (paused && pushed >= (2 * total) / 3) {
        paused = false;
        await replayPaused(false);
      }
    };
    let pushing = true;
    const pullers = USERS.flatMap((user) => [
      { user, alternating: false, puller: new Puller(() => onReplica.client(user, `${user}-reader`)) },
      // Even pulls on the standby, odd ones on the primary: each resumes from the other's cursor.
      { user, alternating: true, puller: new Puller((n) => (n % 2 === 0 ? onReplica : onPrimary).client(user, `${user}-alternating`)) },
    ]);
    const pulling = pullers.map(async ({ user, alternating, puller }) => {
      while (pushing) {
        const standbyHad = alternating && paused ? await standbyMark(user) : null;
        const page = await puller.pull();
        if (standbyHad !== null && page.served % 2 === 0 && page.since !== null && page.since > standbyHad) {
          behind++;
          expect(page.timestamp, 'a lagging standby answers the cursor it was given, never a mark beyond its rows').to.equal(page.since);
        }
      }
    });
    const written = await Promise.all(USERS.flatMap((user) => Array.from({ length: PUSHERS }, (_, d) => pusher(user, `${user}-writer-${d}`, PUSHES, onPushed))));
    pushing = false;
    await Promise.all(pulling);
    if (paused) await replayPaused(false);
    for (const { user, puller } of pullers) {
      await puller.catchUp(written.filter((_, i) => USERS[Math.floor(i / PUSHERS)] === user).flat());
    }
    expect(pausedFor, 'the replay was paused mid-run').to.be.greaterThan(0);
    expect(behind, 'an alternating puller met the paused standby behind its cursor').to.be.greaterThan(0);
    const after = await reads(onReplica);
    expect(after.replica - before.replica, 'pulls read on the standby').to.be.greaterThan(pullers.length);
  });

  it('a standby that stops: pulls fall back to the primary at once, and return to it when it is back', async () => {
    const user = 'outage';
    const puller = new Puller(() => onReplica.client(user, 'outage-reader'));
    const PUSHES = 18;
    let pushed = 0;
    let stopped: { primary: number; replica: number } | null = null;
    let restarted: { primary: number; replica: number } | null = null;
    const outage = (async () => {
      while (pushed < PUSHES / 3) await new Promise((resolve) => setImmediate(resolve));
      await standby!.stop('immediate');
      stopped = await reads(onReplica);
      while (pushed < (2 * PUSHES) / 3) await new Promise((resolve) => setImmediate(resolve));
      restarted = await reads(onReplica);
      await standby!.start();
    })();
    const ids = await pusher(user, 'outage-writer', PUSHES, async () => {
      pushed++;
      // A pull after each push, the ones during the outage too: each answers 200 (Puller.pull checks).
      await puller.pull();
    });
    await outage;
    expect(stopped, 'the standby was stopped mid-run').to.not.equal(null);
    expect(restarted!.primary - stopped!.primary, 'pulls read on the primary while the standby was down').to.be.greaterThan(0);
    // Back: a later check finds it again, and pulls read there.
    const back = await reads(onReplica);
    const deadline = Date.now() + CATCH_UP_MS;
    while ((await reads(onReplica)).replica === back.replica && Date.now() < deadline) await puller.pull();
    expect((await reads(onReplica)).replica, 'pulls read on the standby again').to.be.greaterThan(back.replica);
    await puller.catchUp(ids);
  });

  it('a standby that lags beyond SYNC_REPLICA_MAX_LAG_MS is skipped: pulls read on the primary until it catches up', async () => {
    const tight = await start({ DATABASE_READ_URL: standby!.url, SYNC_REPLICA_MAX_LAG_MS: '300' });
    const user = 'lagging';
    const reader = tight.client(user, 'lag-reader');
    const pull = async () => {
      const r = await reader.pull({ last_pulled_at: null });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      return (r.body.changes.ideas.created as Array<{ id: string }>).map((i) => i.id);
    };
    const deadline = () => Date.now() + CATCH_UP_MS;
    // Caught up: pulls read on the standby.
    let until = deadline();
    const first = await reads(tight);
    while ((await reads(tight)).replica === first.replica && Date.now() < until) await pull();
    expect((await reads(tight)).replica, 'a caught-up standby serves pulls').to.be.greaterThan(first.replica);

    await replayPaused(true);
    try {
      const [id] = await pusher(user, 'lag-writer', 1, async () => undefined);
      // The standby cannot have it (its replay is paused): seeing it means the pull read on the primary.
      until = deadline();
      let seen = false;
      while (!(seen = (await pull()).includes(id!)) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(seen, 'the new idea is pulled once the standby is skipped').to.equal(true);
      expect(await standbyDb!('ideas').where({ user_id: user, id }).first(), 'the paused standby does not have it').to.equal(undefined);
    } finally {
      await replayPaused(false);
    }
    // Caught up again: pulls return to the standby.
    const resumed = await reads(tight);
    until = deadline();
    while ((await reads(tight)).replica === resumed.replica && Date.now() < until) await pull();
    expect((await reads(tight)).replica, 'pulls read on the standby again once it caught up').to.be.greaterThan(resumed.replica);
  });
});
