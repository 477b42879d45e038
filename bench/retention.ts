import { KnexRetentionStore } from '../src/adapters/postgres/knex-retention-store';
import { PurgeExpiredData, type PurgeReport } from '../src/application/purge-expired-data';
import { PACE_MS } from './concurrency';
import { loadLine, runLoad } from './load';
import { databaseName, forgetChildUsers, openBenchDatabase, spawnServer } from './server-process';
import { elapsed, report } from './support';

/**
 * `npm run bench -- retention`: the retention job purging a million tombstones while 200 paced
 * clients sync (PostgreSQL only: on PGlite the database lives inside the server process, so
 * nothing else can purge it while it serves). First the load alone, then the same load while the
 * purge runs (from this process, on its own connections, as another server process's job would).
 * Target: sync p95 with the purge within 20% of without.
 */
const TOMBSTONES = Number(process.env['BENCH_TOMBSTONES'] ?? 1_000_000);
const TOMBSTONE_USERS = 1000;
const CLIENTS = 200;
const LOAD_SECONDS = Number(process.env['BENCH_LOAD_SECONDS'] ?? 10);

export async function benchRetention(): Promise<void> {
  const db = openBenchDatabase();
  if (!db) {
    report({ name: 'retention', database: databaseName(), skipped: 'needs DATABASE_URL: on PGlite only the server process can reach its database' });
    return;
  }
  const run = Date.now().toString(36);
  const users: string[] = [];
  const server = await spawnServer({ RETENTION_INTERVAL_MINUTES: '0' });
  try {
    // A million deleted captures over 1,000 users, written in one statement per 100k (the stamp
    // trigger stamps them as any write): what a year of deletes leaves behind.
    const seeded = process.hrtime.bigint();
    const perUser = Math.ceil(TOMBSTONES / TOMBSTONE_USERS);
    for (let from = 0; from < TOMBSTONE_USERS; from += 100) {
      await db.raw(
        `INSERT INTO captures (user_id, id, created_at, type, raw_content, _status)
         SELECT ? || (u / ?)::text, 'dead-' || u::text, 0, 'text', 'x', 'deleted' FROM generate_series(?::int, ?::int) AS u`,
        [`tomb-${run}-`, perUser, from * perUser, Math.min(TOMBSTONES, (from + 100) * perUser) - 1],
      );
    }
    for (let u = 0; u < TOMBSTONE_USERS; u++) users.push(`tomb-${run}-${u}`);
    await db.raw('ANALYZE captures');
    const seedMs = elapsed(seeded);

    const warm = await runLoad({ urls: [server.url], clients: 20, seconds: 1, prefix: `ret-warm-${run}`, db });
    users.push(...warm.users);
    const alone = await runLoad({ urls: [server.url], clients: CLIENTS, seconds: LOAD_SECONDS, prefix: `ret-alone-${run}`, db, pauseMs: PACE_MS, serverCpuMs: () => server.cpuMs() });
    users.push(...alone.users);

    // Every tombstone older than "now": a retention of 0 ms, with the job's own batch size.
    const purge = new PurgeExpiredData(new KnexRetentionStore(db), { now: () => Date.now() + 1 }, { tombstonesMs: 0, syncLogsMs: null, conflictsMs: null, statsMs: null, receiptsMs: 24 * 3600_000, batchSize: 1000 });
    const purgeStarted = process.hrtime.bigint();
    let purgeMs = 0;
    const purging = purge
      .execute()
      .map((r) => {
        purgeMs = elapsed(purgeStarted);
        return r;
      })
      .match(
        (r): PurgeReport => r,
        (e) => {
          throw new Error(`purge failed: ${e.message}`);
        },
      );
    const during = await runLoad({ urls: [server.url], clients: CLIENTS, seconds: LOAD_SECONDS, prefix: `ret-during-${run}`, db, pauseMs: PACE_MS, serverCpuMs: () => server.cpuMs() });
    users.push(...during.users);
    const stillPurging = purgeMs === 0;
    const purged = await purging;
    const left = Number((await db('captures').where('user_id', 'like', `tomb-${run}-%`).count<{ n: string }[]>({ n: '*' }))[0]!.n);
    const ratio = during.latency.p95 / alone.latency.p95;
    report({
      name: 'retention',
      database: databaseName(),
      clients: CLIENTS,
      load: 'paced',
      tombstones: TOMBSTONES,
      seed_ms: Math.round(seedMs),
      purged: purged.tombstones,
      tombstones_left: left,
      purge_ms: Math.round(purgeMs),
      purge_rows_per_s: Math.round(purged.tombstones / (purgeMs / 1000)),
      purge_ran_through_whole_load: stillPurging,
      p95_alone_ms: alone.latency.p95,
      p95_during_purge_ms: during.latency.p95,
      p95_ratio: Number(ratio.toFixed(2)),
      errors: alone.errors + during.errors,
      target: 'p95 during the purge within 20% of without (ratio <= 1.2), no errors',
      target_met: ratio <= 1.2 && alone.errors + during.errors === 0,
      alone: loadLine(alone),
      during: loadLine(during),
    });
  } finally {
    await server.stop();
    await forgetChildUsers(db, users);
    await db.destroy();
  }
}
