import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { signToken } from '../src/adapters/crypto/jwt-token-issuer';
import { openDatabase } from '../src/adapters/postgres/connection';
import { loadConfig } from '../src/main/config';
import { forgetUsers } from './support';

/**
 * The server as `npm start` runs it (`node --import tsx src/main/server.ts`), in a child process of
 * its own, so its memory and CPU are its own: for the memory, concurrency and scale-out scenarios.
 * On PostgreSQL (DATABASE_URL set) every child uses that database; otherwise each child has its
 * own in-memory PGlite (which cannot be shared between processes).
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const FIELD_KEYS = `b1:${Buffer.alloc(32, 11).toString('base64')}`;
/** USER_HZ: 100 on Linux everywhere this runs. */
const CLOCK_TICKS = 100;
const jwt = loadConfig({ JWT_SECRET: SECRET, FIELD_ENCRYPTION_KEYS: FIELD_KEYS }).jwt;

export const databaseUrl = (): string | undefined => process.env['DATABASE_URL']?.trim() || undefined;
export const databaseName = (): 'postgres' | 'pglite' => (databaseUrl() ? 'postgres' : 'pglite');

/**
 * A token every child server accepts (they all share the bench's JWT secret), signed once per
 * user and then reused, as an app holds its token: signing anew on each request (the phones ask
 * before every request) cost the bench's clients about 0.3 ms a request.
 */
const tokens = new Map<string, string>();
export const childToken = (userId: string): string => {
  let token = tokens.get(userId);
  if (!token) tokens.set(userId, (token = signToken(jwt, userId, { expiresInSeconds: 3600 })));
  return token;
};

export interface ChildServer {
  readonly url: string;
  readonly pid: number;
  /** Resident and peak resident memory (VmRSS, VmHWM) of the child, from /proc/<pid>/status, in MB. */
  memory(): { rss_mb: number; hwm_mb: number };
  /** CPU time the child has used so far (user + system), in ms, from /proc/<pid>/stat. */
  cpuMs(): number;
  /** Resets the child's peak (VmHWM) to its current RSS (`5` to /proc/<pid>/clear_refs); false if the kernel refused. */
  resetPeak(): boolean;
  /**
   * What the server logged beyond its start-up line (it runs at LOG_LEVEL=warn): each distinct
   * message with its count, the database error's own words appended (`msg: cause`), and how many
   * sync-log entries it said it dropped.
   */
  logged(): { messages: Record<string, number>; sync_log_entries_dropped: number };
  /** SIGTERM (the server finishes in-flight requests and flushes its logs), then waits for the exit. */
  stop(): Promise<void>;
}

function summarize(output: string): { messages: Record<string, number>; sync_log_entries_dropped: number } {
  const messages: Record<string, number> = {};
  let dropped = 0;
  for (const line of output.split('\n')) {
    if (!line.trim() || /^listening on /.test(line)) continue;
    let key = line.slice(0, 200);
    try {
      const entry = JSON.parse(line) as { msg?: string; entries?: number; err?: { message?: string } };
      const cause = entry.err?.message?.split(' - ').pop();
      key = `${entry.msg ?? '(no message)'}${cause ? `: ${cause.slice(0, 120)}` : ''}`;
      if (typeof entry.entries === 'number' && /dropped/.test(entry.msg ?? '')) dropped += entry.entries;
    } catch {
      // not a log line: counted as printed
    }
    messages[key] = (messages[key] ?? 0) + 1;
  }
  return { messages, sync_log_entries_dropped: dropped };
}

/** Busy and total CPU time of the whole machine so far (all cores, every process), in ticks, from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: total - idle, total };
}

/** The logged() of several servers, added up. */
export function loggedByAll(servers: readonly ChildServer[]): { messages: Record<string, number>; sync_log_entries_dropped: number } {
  const messages: Record<string, number> = {};
  let dropped = 0;
  for (const s of servers) {
    const l = s.logged();
    for (const [k, n] of Object.entries(l.messages)) messages[k] = (messages[k] ?? 0) + n;
    dropped += l.sync_log_entries_dropped;
  }
  return { messages, sync_log_entries_dropped: dropped };
}

export async function spawnServer(env: Record<string, string> = {}): Promise<ChildServer> {
  const url = databaseUrl();
  // BENCH_SERVER_CPU_PROF=<dir>: each server process writes a V8 CPU profile there when it stops.
  const profile = process.env['BENCH_SERVER_CPU_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(process.env['BENCH_SERVER_CPU_PROF'])}`] : [];
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [...profile, '--import', 'tsx', 'src/main/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      JWT_SECRET: SECRET,
      FIELD_ENCRYPTION_KEYS: FIELD_KEYS,
      RATE_LIMIT_IP_PER_MINUTE: '0',
      RATE_LIMIT_USER_PER_MINUTE: '0',
      ...(url ? { DATABASE_URL: url } : { PGLITE_DATA_DIR: 'memory://' }),
      ...env,
    },
    stdio: 'pipe',
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<void>((done) => child.on('exit', () => done()));
  const until = Date.now() + 60_000;
  let listening: RegExpExecArray | null = null;
  while (!(listening = /listening on (http:\/\/\S+)/.exec(output))) {
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`the server process did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const pid = child.pid!;
  const status = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : NaN;
  };
  return {
    url: listening[1]!,
    pid,
    memory: () => ({ rss_mb: status('VmRSS'), hwm_mb: status('VmHWM') }),
    resetPeak: () => {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5');
        return true;
      } catch {
        return false;
      }
    },
    logged: () => summarize(output),
    cpuMs: () => {
      // Fields after the command name (which is in parentheses): utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    },
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** On PostgreSQL, a connection of the bench's own to check and clean up after child servers; null on PGlite. */
export function openBenchDatabase(): Knex | null {
  const url = databaseUrl();
  return url ? openDatabase({ kind: 'postgres', url, poolMax: 2 }) : null;
}

/** Deletes what these users wrote (PostgreSQL; an in-memory PGlite goes away with its process). */
export async function forgetChildUsers(db: Knex | null, users: readonly string[]): Promise<void> {
  if (db) await forgetUsers(db, users);
}
