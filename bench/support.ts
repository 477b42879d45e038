import { pino } from 'pino';
import { signToken } from '../src/adapters/crypto/jwt-token-issuer';
import { openDatabase } from '../src/adapters/postgres/connection';
import { loadConfig } from '../src/main/config';
import { startServer, type RunningServer } from '../src/main/server';

/** One JSON line per measurement, on stdout. */
export function report(line: Record<string, unknown>): void {
  console.log(JSON.stringify({ ...line, peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));
}

export interface BenchServer extends RunningServer {
  token(userId: string): string;
  database: string;
  /** Deletes what these users wrote, so a bench leaves a real database as it found it. */
  forget(userIds: readonly string[]): Promise<void>;
}

const TABLES = ['captures', 'todos', 'thoughts', 'ideas', 'projects', 'sync_conflicts', 'sync_push_receipts', 'sync_users'];

/** The real server on 127.0.0.1: PostgreSQL when DATABASE_URL is set, in-memory PGlite otherwise. */
export async function startBenchServer(env: Record<string, string> = {}): Promise<BenchServer> {
  const config = loadConfig({
    ...process.env,
    PGLITE_DATA_DIR: 'memory://',
    JWT_SECRET: 'bench-secret-0123456789abcdef0123456789abcdef',
    PORT: '0',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_IP_PER_MINUTE: '0',
    RATE_LIMIT_USER_PER_MINUTE: '0',
    ...env,
  });
  const db = openDatabase(config.database);
  const running = await startServer(config, { db, logger: pino({ level: 'warn' }) });
  return {
    ...running,
    close: async () => {
      await running.close();
      await db.destroy();
    },
    token: (u) => signToken(config.jwt, u, { expiresInSeconds: 3600 }),
    database: config.database.kind,
    forget: async (userIds) => {
      for (const table of TABLES) await db(table).whereIn('user_id', [...userIds]).delete();
    },
  };
}

export const elapsed = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;
