/**
 * `npm run soak` (not part of `npm test`; docs/testing.md):
 * 1. `--runs` seeded convergence runs (default 5,000) from seed 1,000,000 (CI uses 1–200), on
 *    PostgreSQL when DATABASE_URL is set, else PGlite;
 * 2. a `--minutes` timed soak (default 10) of `--devices` clients (default 10) on their own
 *    triggers, with faults, crashes and a server process restarted every minute; the server runs
 *    in its own process (PostgreSQL only) so its RSS is measured alone.
 * 3. `--kill-runs` seeded runs with devices as processes killed with SIGKILL (default 1,000) from
 *    seed 1,000,000 (CI uses 1–50; test/support/kill/kill-run.ts).
 * Prints one JSON line per progress report and a summary; exits 1 on any divergence.
 * `--runs 0`, `--minutes 0` or `--kill-runs 0` skips a part.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { signToken } from '../../src/adapters/crypto/jwt-token-issuer';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { retryDelayMs } from '../../src/domain';
import { ConvergenceRun, formatFailure, runConvergence, type SimServer } from '../support/convergence/model';
import { runKillConvergence } from '../support/kill/kill-run';
import { closeDatabases, getDatabase } from '../support/databases';
import { TEST_FIELD_KEYS, TEST_SECRET } from '../support/server';
import { loadConfig } from '../../src/main/config';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5000' },
    'kill-runs': { type: 'string', default: '1000' },
    'base-seed': { type: 'string', default: '1000000' },
    minutes: { type: 'string', default: '10' },
    devices: { type: 'string', default: '10' },
    users: { type: 'string', default: '3' },
    'interval-ms': { type: 'string', default: '40' },
    'fault-rate': { type: 'string', default: '0.1' },
  },
});
const line = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const url = process.env['DATABASE_URL'];
let failed = 0;

async function seededRuns(): Promise<void> {
  const runs = Number(args.runs);
  if (runs <= 0) return;
  const base = Number(args['base-seed']);
  const database = await getDatabase(url ? 'postgres' : 'pglite');
  const started = Date.now();
  const totals = { runs: 0, divergent: 0, writes: 0, acknowledged: 0, syncs: 0, fetchFaults: 0, crashes: 0 };
  const failing: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await runConvergence(database.db, { seed: base + i });
    totals.runs++;
    totals.writes += r.writes;
    totals.acknowledged += r.acknowledged;
    totals.syncs += r.syncs;
    totals.fetchFaults += Object.values(r.faults.fetch).reduce((a, b) => a + b, 0);
    totals.crashes += Object.values(r.faults.crashes).reduce((a, b) => a + b, 0);
    if (!r.ok) {
      totals.divergent++;
      failing.push(r.seed);
      console.error(formatFailure(r));
    }
    // PGlite keeps everything in memory: empty it now and then.
    if (database.name === 'pglite' && i % 100 === 99) await database.reset();
    if ((i + 1) % 100 === 0 || i + 1 === runs) line({ part: 'seeded', database: database.name, ...totals, seconds: Math.round((Date.now() - started) / 1000) });
  }
  failed += totals.divergent;
  line({ part: 'seeded', done: true, database: database.name, ...totals, failing_seeds: failing, seconds: Math.round((Date.now() - started) / 1000) });
}

/** The server as its own process on DATABASE_URL, with the test key ring so the checks can read what it stores. */
function childServer(samples: number[]): () => Promise<SimServer & { pid: number }> {
  const jwt = loadConfig({ JWT_SECRET: TEST_SECRET }).jwt;
  return async () => {
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main/server.ts'], {
      env: { ...process.env, DATABASE_URL: url!, JWT_SECRET: TEST_SECRET, FIELD_ENCRYPTION_KEYS: TEST_FIELD_KEYS, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', RATE_LIMIT_IP_PER_MINUTE: '0', RATE_LIMIT_USER_PER_MINUTE: '0', NODE_ENV: 'development' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const listening = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (l) => {
        const m = /listening on (\S+)/.exec(l);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    const rss = () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) samples.push(Number(m[1]) / 1024);
      } catch {
        // exited
      }
    };
    const sampler = setInterval(rss, 2000);
    return {
      url: listening,
      pid: child.pid!,
      token: (user) => signToken(jwt, user, { expiresInSeconds: 3600 }),
      close: async () => {
        clearInterval(sampler);
        if (child.exitCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      },
    };
  };
}

async function killRuns(): Promise<void> {
  const runs = Number(args['kill-runs']);
  if (runs <= 0) return;
  const base = Number(args['base-seed']);
  const database = await getDatabase(url ? 'postgres' : 'pglite');
  const started = Date.now();
  const totals = { runs: 0, failed: 0, kills: 0, starts: 0, writes: 0, syncs: 0, cut: 0 };
  const failing: number[] = [];
  for (let i = 0; i < runs; i++) {
    await database.reset();
    const r = await runKillConvergence(database.db, { seed: base + i });
    totals.runs++;
    totals.kills += r.kills.sync + r.kills.write + r.kills.idle;
    totals.starts += r.starts;
    totals.writes += r.writes;
    totals.syncs += r.syncs.ok + r.syncs.failed + r.syncs.cut;
    totals.cut += r.syncs.cut;
    if (r.problems.length) {
      totals.failed++;
      failing.push(r.seed);
      console.error(`seed ${r.seed}:\n  ${r.problems.join('\n  ')}\n${r.commands.join('\n')}`);
    }
    if ((i + 1) % 50 === 0) line({ part: 'kill-runs', progress: i + 1, of: runs, ...totals, seconds: Math.round((Date.now() - started) / 1000) });
  }
  failed += totals.failed;
  line({ part: 'kill-runs', done: true, base_seed: base, ...totals, failing_seeds: failing, seconds: Math.round((Date.now() - started) / 1000) });
}

async function timedSoak(): Promise<void> {
  const minutes = Number(args.minutes);
  if (minutes <= 0) return;
  if (!url) {
    line({ part: 'timed', skipped: 'the timed soak runs the server as its own process on PostgreSQL: set DATABASE_URL' });
    return;
  }
  const db = openDatabase({ kind: 'postgres', url, poolMax: 4 });
  // Each restart is a new process: RSS samples restart too, so growth is judged per process.
  const processes: number[][] = [];
  const startServer = async () => {
    const samples: number[] = [];
    processes.push(samples);
    return childServer(samples)();
  };
  const run = new ConvergenceRun(db, { seed: Number(args['base-seed']) + 999_999, startServer });
  const durationMs = minutes * 60_000;
  // The longest backoff wait, then 30 s: by then every client must be idle again.
  const recoveryBoundMs = retryDelayMs(Number.MAX_SAFE_INTEGER) + 30_000;
  const result = await run.soak({
    users: Number(args.users),
    devices: Number(args.devices),
    durationMs,
    intervalMs: Number(args['interval-ms']),
    faultRate: Number(args['fault-rate']),
    // Restarted a minute in: the second process then serves the rest, long enough to judge its RSS.
    restartAtMs: [60_000],
    recoveryBoundMs,
    onProgress: (p) => line({ part: 'timed', elapsed_s: Math.round(p.elapsedMs / 1000), writes: p.writes, acknowledged: p.acknowledged, syncs: p.syncs, rss_mb: processes.at(-1)?.at(-1)?.toFixed(0) }),
  });
  // RSS growth of the longest-lived server process after its first minute (warm-up; a sample every
  // 2 s): the peak of its last minute against its level at the end of warm-up.
  const longest = processes.reduce((a, b) => (b.length > a.length ? b : a), []);
  const warm = longest.slice(30);
  const growth = warm.length > 30 ? (Math.max(...warm.slice(-30)) - warm[0]!) / warm[0]! : null;
  if (result.ok) {
    for (const user of run.serverUserIds) {
      for (const t of ['captures', 'todos', 'thoughts', 'ideas', 'projects', 'sync_conflicts', 'sync_push_receipts', 'sync_users', 'sync_logs', 'sync_failure_streaks']) await db(t).where({ user_id: user }).delete();
    }
  } else {
    // Kept for the diagnosis: the users' rows, conflicts and receipts stay in the database, and
    // the whole command log (tens of thousands of lines) goes to a file.
    failed++;
    const file = join(tmpdir(), `soak-failure-${Date.now()}.log`);
    writeFileSync(file, formatFailure(result));
    console.error(result.problems.map((p) => `  problem: ${p}`).join('\n'));
    line({ part: 'timed', failure_log: file, users_kept_in_database: run.serverUserIds });
  }
  await db.destroy();
  line({
    part: 'timed',
    done: true,
    ok: result.ok,
    minutes,
    devices: result.devices,
    users: result.users,
    writes: result.writes,
    writes_per_s: Math.round(result.writes / (durationMs / 1000)),
    acknowledged: result.acknowledged,
    syncs: result.syncs,
    faults: result.faults,
    recovery_ms: result.recoveryMs,
    recovery_bound_ms: recoveryBoundMs,
    server_processes: processes.length,
    rss_mb_after_warmup: warm[0]?.toFixed(0),
    rss_mb_peak_last_minute: warm.length ? Math.max(...warm.slice(-30)).toFixed(0) : null,
    rss_growth: growth === null ? null : Number(growth.toFixed(3)),
  });
  if (growth !== null && growth > 0.1) {
    failed++;
    line({ part: 'timed', problem: `server RSS grew ${(growth * 100).toFixed(1)}% after warm-up (limit 10%)` });
  }
}

try {
  await seededRuns();
  await killRuns();
  await timedSoak();
} finally {
  await closeDatabases();
}
line({ done: true, failed });
process.exit(failed ? 1 : 0);
