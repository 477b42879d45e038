import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { migrateToLatest } from '../../src/adapters/postgres/migrations';
import { openChannel } from '../support/live';
import { clusterUnavailable, PgCluster } from '../support/pg-cluster';
import { KnexChangeStore } from '../../src/adapters/postgres/knex-change-store';
import { PullChanges } from '../../src/application/pull-changes';
import { startTestServer, testCipher, type ApiClient, type TestServer } from '../support/server';

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

/** One pull: the ideas it created and its cursor. */
type PullOnce = (n: number, since: number | null) => Promise<{ ideas: { created: Array<{ id: string }>; updated: unknown[] }; timestamp: number }>;

/** A pull through the HTTP API. */
const overHttp =
  (client: (n: number) => ApiClient): PullOnce =>
  async (n, since) => {
    const r = await client(n).pull({ last_pulled_at: since });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return { ideas: r.body.changes.ideas, timestamp: r.body.timestamp };
  };

/** A device that only pulls: every idea it was sent, in order, and its cursor. */
class Puller {
  readonly ids: string[] = [];
  cursor: number | null = null;
  pulls = 0;
  constructor(readonly pullOnce: PullOnce) {}

  async pull(): Promise<{ since: number | null; timestamp: number; rows: number; served: number }> {
    const since = this.cursor;
    const served = this.pulls++;
    const { ideas, timestamp } = await this.pullOnce(served, since);
    expect(ideas.updated, 'only new ideas are pushed').to.deep.equal([]);
    this.ids.push(...ideas.created.map((i) => i.id));
    expect(timestamp, 'a cursor never goes back').to.be.at.least(since ?? 0);
    this.cursor = timestamp;
    return { since, timestamp, rows: ideas.created.length, served };
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

  it('pushers on the primary, pullers on the standby, and pullers reading the standby and the primary in turn while its replay is paused: nothing missed, nothing twice', async () => {
    const USERS = ['alt-a', 'alt-b'];
    const PUSHERS = 2;
    const PUSHES = 16;
    const total = USERS.length * PUSHERS * PUSHES;
    let pushed = 0;
    let paused = false;
    let pausedFor = 0;
    const before = await reads(onReplica);
    /** Standby reads of an alternating puller whose cursor (from the primary) was above the standby's mark. */
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
    // The alternating pullers read each database straight through the pull use case: through
    // the server, a standby that lacks a push the server heard of is not asked at all (next test).
    const settings = onPrimary.config.sync;
    const stores = [new PullChanges(new KnexChangeStore(standbyDb!, testCipher), settings), new PullChanges(new KnexChangeStore(primaryDb!, testCipher), settings)];
    const direct =
      (user: string): PullOnce =>
      async (n, since) => {
        const r = await stores[n % 2]!.execute({ userId: user, query: { last_pulled_at: since === null ? undefined : String(since) }, schemaVersion: undefined, deviceId: `${user}-alternating` });
        if (r.isErr()) throw new Error(r.error.message);
        return { ideas: r.value.changes['ideas'] as never, timestamp: r.value.timestamp };
      };
    const pullers = USERS.flatMap((user) => [
      { user, alternating: false, puller: new Puller(overHttp(() => onReplica.client(user, `${user}-reader`))) },
      // Even pulls on the standby, odd ones on the primary: each resumes from the other's cursor.
      { user, alternating: true, puller: new Puller(direct(user)) },
    ]);
    const pulling = pullers.map(async ({ user, alternating, puller }) => {
      while (pushing) {
        const standbyHad = alternating && paused ? await standbyMark(user) : null;
        const page = await puller.pull();
        // Counted only when the standby did not move during the pull (the pause may be starting or ending).
        if (standbyHad !== null && page.served % 2 === 0 && page.since !== null && page.since > standbyHad && (await standbyMark(user)) === standbyHad) {
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
    expect(after.replica - before.replica, 'pulls read on the standby').to.be.greaterThan(USERS.length);
  });

  it('a standby that has not replayed a push this server heard of: the pull reads on the primary', async () => {
    const user = 'poked';
    const reader = onReplica.client(user, 'poked-reader');
    const first = await reader.pull({ last_pulled_at: null });
    expect(first.status).to.equal(200);
    // The reader is live: it pulls once poked, as the mobile client does.
    const channel = openChannel(onReplica.url, onReplica.token(user), 'poked-reader');
    await replayPaused(true);
    try {
      await channel.waitFor((e) => e.type === 'hello', 'hello');
      // The standby is paused but within the (loose) bound: usable, yet without this push.
      const ids = await pusher(user, 'poked-writer', 1, async () => undefined);
      await channel.waitFor((e) => e.type === 'change', 'the poke');
      const before = await reads(onReplica);
      const r = await reader.pull({ last_pulled_at: first.body.timestamp });
      expect(r.status).to.equal(200);
      expect(r.body.changes.ideas.created.map((i: { id: string }) => i.id), 'the pushed ideas, at once').to.have.members(ids);
      expect(await standbyDb!('ideas').where({ user_id: user }).whereIn('id', ids).first(), 'the paused standby does not have them').to.equal(undefined);
      expect((await reads(onReplica)).primary - before.primary, 'read on the primary').to.equal(1);
    } finally {
      channel.close();
      await replayPaused(false);
    }
  });

  it('a standby that stops: pulls fall back to the primary at once, and return to it when it is back', async () => {
    const user = 'outage';
    const puller = new Puller(overHttp(() => onReplica.client(user, 'outage-reader')));
    const PUSHES = 18;
    let pushed = 0;
    let stopped: { primary: number; replica: number } | null = null;
    let restarted: { primary: number; replica: number } | null = null;
    const ids = await pusher(user, 'outage-writer', PUSHES, async () => {
      pushed++;
      // A pull after each push, the ones during the outage too: each answers 200 (Puller.pull checks).
      await puller.pull();
      // Down for the middle third of the pushes.
      if (pushed === PUSHES / 3) {
        await standby!.stop('immediate');
        stopped = await reads(onReplica);
      } else if (pushed === (2 * PUSHES) / 3) {
        restarted = await reads(onReplica);
        await standby!.start();
      }
    });
    expect(stopped, 'the standby was stopped mid-run').to.not.equal(null);
    const during = { primary: restarted!.primary - stopped!.primary, replica: restarted!.replica - stopped!.replica };
    expect(during, 'the pulls while the standby was down, all read on the primary').to.deep.equal({ primary: PUSHES / 3, replica: 0 });
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
      // WAL the standby does not replay (a push of another user: this server heard of that one only).
      await pusher('lag-writer', 'lag-writer', 1, async () => undefined);
      until = deadline();
      const usable = async () => /^sync_replica_usable\{[^}]*\} 1$/m.test(await (await fetch(`${tight.metricsUrl}/metrics`)).text());
      while ((await usable()) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await usable(), 'the paused standby is skipped once it lags beyond 300 ms').to.equal(false);
      const skipped = await reads(tight);
      await pull();
      const after = await reads(tight);
      expect([after.primary - skipped.primary, after.replica - skipped.replica], 'the pull read on the primary').to.deep.equal([1, 0]);
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
