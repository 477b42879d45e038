import { readdirSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { clusterUnavailable, PgCluster } from '../test/support/pg-cluster';
import { openDatabase } from '../src/adapters/postgres/connection';
import { migrateToLatest } from '../src/adapters/postgres/migrations';
import { capture, send } from './data';
import { childToken, spawnServer, type ChildServer } from './server-process';
import { report } from './support';

/**
 * Pulls on a hot standby (DATABASE_READ_URL) against everything on the primary, paired in one run:
 * a throwaway primary and a pg_basebackup standby of the bench's own (never DATABASE_URL's
 * server), one server process, and the same load twice per mode, the modes alternated (primary,
 * replica, primary, replica) so that drift of the machine falls on both. The load: PULLERS
 * closed-loop clients each pulling a seeded user's SEEDED captures from the start (a first sync:
 * one page), and PUSHERS paced clients pushing 20 new captures every PUSH_EVERY_MS. Reported per
 * run: pulls per second, pull and push latency, and the CPU each database's processes used.
 * Every pull is checked (all SEEDED rows), and every accepted push counted on the primary.
 */

const PULLERS = 8;
const PULL_USERS = 8;
const SEEDED = 400;
const PUSHERS = 10;
const PER_PUSH = 20;
const PUSH_EVERY_MS = 100;
const seconds = (): number => Number(process.env['BENCH_LOAD_SECONDS'] ?? 8);
const CLOCK_TICKS = 100;
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

/** CPU time (ms) of a cluster's postmaster and all its children (backends, WAL sender/receiver, startup). */
function clusterCpuMs(cluster: PgCluster): number {
  const postmaster = Number(readFileSync(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(entry) === postmaster || Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

function percentile(xs: number[], p: number): number {
  const sorted = Float64Array.from(xs).sort();
  return sorted.length ? Number(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!.toFixed(1)) : NaN;
}

interface RunResult {
  readonly pulls: number;
  readonly pullMs: number[];
  readonly pushMs: number[];
  readonly accepted: Map<string, number>;
  readonly errors: string[];
  readonly ms: number;
}

async function load(server: ChildServer, run: string, forSeconds: number): Promise<RunResult> {
  const deadline = Date.now() + forSeconds * 1000;
  const pullMs: number[] = [];
  const pushMs: number[] = [];
  const errors: string[] = [];
  const accepted = new Map<string, number>();
  let pulls = 0;
  const start = performance.now();
  const pullers = Array.from({ length: PULLERS }, async (_, p) => {
    const user = `replicas-seed-${p % PULL_USERS}`;
    const token = childToken(user);
    while (Date.now() < deadline) {
      const t = performance.now();
      const r = await send(`${server.url}/api/sync/pull?last_pulled_at=null&tables=captures`, 'GET', { authorization: `Bearer ${token}`, 'accept-encoding': 'identity' }, undefined, agent);
      pullMs.push(performance.now() - t);
      if (r.status !== 200) {
        errors.push(`pull ${r.status} ${r.body.toString().slice(0, 200)}`);
        continue;
      }
      const page = JSON.parse(r.body.toString()) as { changes: { captures: { created: unknown[] } }; has_more: boolean };
      if (page.changes.captures.created.length !== SEEDED || page.has_more) errors.push(`pull of ${user}: ${page.changes.captures.created.length} rows, has_more ${page.has_more}`);
      pulls++;
    }
  });
  const pushers = Array.from({ length: PUSHERS }, async (_, w) => {
    const user = `replicas-${run}-w${w}`;
    const token = childToken(user);
    let seq = 0;
    await new Promise((r) => setTimeout(r, Math.random() * PUSH_EVERY_MS));
    while (Date.now() < deadline) {
      const began = Date.now();
      const created = Array.from({ length: PER_PUSH }, (_, k) => capture(user, seq + k));
      const t = performance.now();
      const r = await send(`${server.url}/api/sync/push`, 'POST', { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify({ changes: { captures: { created } } }), agent);
      pushMs.push(performance.now() - t);
      if (r.status === 200) {
        seq += PER_PUSH;
        accepted.set(user, seq);
      } else errors.push(`push ${r.status} ${r.body.toString().slice(0, 200)}`);
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(PUSH_EVERY_MS - (Date.now() - began), deadline - Date.now()))));
    }
  });
  await Promise.all([...pullers, ...pushers]);
  return { pulls, pullMs, pushMs, accepted, errors, ms: performance.now() - start };
}

export async function benchReplicas(): Promise<void> {
  const why = clusterUnavailable();
  if (why) {
    report({ name: 'replicas', skipped: true, reason: `needs a throwaway primary and standby: ${why}` });
    return;
  }
  const primary = await PgCluster.createPrimary();
  let standby: PgCluster | undefined;
  const servers: ChildServer[] = [];
  const db = openDatabase({ kind: 'postgres', url: primary.url, poolMax: 2 });
  try {
    await primary.start();
    await migrateToLatest(db);
    standby = await PgCluster.standbyOf(primary);
    await standby.start();
    const env = { DATABASE_URL: primary.url };
    const modes = {
      primary: await spawnServer(env),
      replica: await spawnServer({ ...env, DATABASE_READ_URL: standby.url }),
    };
    servers.push(modes.primary, modes.replica);
    // Seeded through the server (encrypted as it stores them), then replayed on the standby.
    for (let u = 0; u < PULL_USERS; u++) {
      const user = `replicas-seed-${u}`;
      const created = Array.from({ length: SEEDED }, (_, k) => capture(user, k));
      const r = await send(`${modes.primary.url}/api/sync/push`, 'POST', { authorization: `Bearer ${childToken(user)}`, 'content-type': 'application/json' }, JSON.stringify({ changes: { captures: { created } } }), agent);
      if (r.status !== 200) throw new Error(`seeding failed: ${r.status} ${r.body}`);
    }
    // A short warm-up of each (connections, plans, JIT of the server's code).
    for (const server of [modes.primary, modes.replica]) await load(server, `warm-${servers.indexOf(server)}`, 2);
    const order: Array<keyof typeof modes> = ['primary', 'replica', 'primary', 'replica'];
    for (let i = 0; i < order.length; i++) {
      const mode = order[i]!;
      const server = modes[mode];
      const cpu0 = { primary: clusterCpuMs(primary), standby: clusterCpuMs(standby), server: server.cpuMs() };
      const r = await load(server, `${mode}-${i}`, seconds());
      const used = (ms: number) => Math.round((ms / r.ms) * 100);
      // Every accepted push is on the primary, once.
      const rows = (await db('captures').whereIn('user_id', [...r.accepted.keys()]).groupBy('user_id').select('user_id').count({ n: '*' })) as Array<{ user_id: string; n: string }>;
      for (const row of rows) if (Number(row.n) !== r.accepted.get(row.user_id)) r.errors.push(`${row.user_id}: ${row.n} rows on the primary, ${r.accepted.get(row.user_id)} accepted`);
      report({
        name: 'replicas',
        pulls_on: mode,
        pair: Math.floor(i / 2) + 1,
        seconds: Number((r.ms / 1000).toFixed(1)),
        pullers: PULLERS,
        rows_per_pull: SEEDED,
        pulls_per_s: Math.round(r.pulls / (r.ms / 1000)),
        pull_p50_ms: percentile(r.pullMs, 50),
        pull_p95_ms: percentile(r.pullMs, 95),
        pushers: PUSHERS,
        push_every_ms: PUSH_EVERY_MS,
        pushes: r.pushMs.length,
        push_p50_ms: percentile(r.pushMs, 50),
        push_p95_ms: percentile(r.pushMs, 95),
        cpu_pct_of_one_core: {
          server: used(server.cpuMs() - cpu0.server),
          primary_postgres: used(clusterCpuMs(primary) - cpu0.primary),
          standby_postgres: used(clusterCpuMs(standby) - cpu0.standby),
        },
        cores: availableParallelism(),
        errors: r.errors.length,
        ...(r.errors.length ? { error_samples: r.errors.slice(0, 3) } : {}),
      });
    }
  } finally {
    for (const s of servers) await s.stop();
    await db.destroy();
    await standby?.destroy();
    await primary.destroy();
    agent.destroy();
  }
}
