import { pino } from 'pino';
import { signToken } from '../src/adapters/crypto/jwt-token-issuer';
import type { Knex } from 'knex';
import { AesGcmFieldCipher } from '../src/adapters/crypto/aes-gcm-field-cipher';
import { openDatabase, type DatabaseTarget } from '../src/adapters/postgres/connection';
import type { FieldCipher } from '../src/application/ports/field-cipher';
import { loadConfig } from '../src/main/config';
import { startServer, type RunningServer } from '../src/main/server';

/** One JSON line per measurement, on stdout. */
export function report(line: Record<string, unknown>): void {
  console.log(JSON.stringify({ ...line, peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));
}

export interface BenchServer extends RunningServer {
  token(userId: string): string;
  database: string;
  /** The server's own database handle (PGlite has one connection: a second instance would be another database). */
  db: Knex;
  /** Where the server's database is, to open a second connection pool on PostgreSQL. */
  target: DatabaseTarget;
  /** The server's field cipher (same key ring), for limits that store what the server stores. */
  cipher: FieldCipher;
  /** Deletes what these users wrote, so a bench leaves a real database as it found it. */
  forget(userIds: readonly string[]): Promise<void>;
}

const TABLES = ['captures', 'todos', 'thoughts', 'ideas', 'projects', 'sync_conflicts', 'sync_push_receipts', 'sync_users', 'sync_logs', 'sync_failure_streaks'];

/** Deletes every row these users have in the server's tables (a bench leaves a real database as it found it). */
export async function forgetUsers(db: Knex, userIds: readonly string[]): Promise<void> {
  for (let i = 0; i < userIds.length; i += 500) {
    const some = userIds.slice(i, i + 500);
    for (const table of TABLES) await db(table).whereIn('user_id', some).delete();
  }
}

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
    // A fixed key unless one is given: on DATABASE_URL a generated one is refused (docs/security.md).
    FIELD_ENCRYPTION_KEYS: process.env['FIELD_ENCRYPTION_KEYS'] || `bench:${Buffer.alloc(32, 11).toString('base64')}`,
    ...env,
  });
  const db = openDatabase(config.database);
  const running = await startServer(config, { db, logger: pino({ level: 'warn' }) });
  const forgotten = new Set<string>();
  return {
    ...running,
    close: async () => {
      await running.close();
      // The server writes its queued sync_logs (and their failure streaks) on close: those of
      // forgotten users go too.
      if (forgotten.size) for (const table of ['sync_logs', 'sync_failure_streaks']) await db(table).whereIn('user_id', [...forgotten]).delete();
      await db.destroy();
    },
    token: (u) => signToken(config.jwt, u, { expiresInSeconds: 3600 }),
    database: config.database.kind,
    db,
    target: config.database,
    cipher: new AesGcmFieldCipher(config.fieldKeys.ring),
    forget: async (userIds) => {
      for (const u of userIds) forgotten.add(u);
      await forgetUsers(db, userIds);
    },
  };
}

export const elapsed = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;
