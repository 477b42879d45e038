import type { Knex } from 'knex';
import { pino, type Logger } from 'pino';
import { AesGcmFieldCipher } from '../../src/adapters/crypto/aes-gcm-field-cipher';
import { signToken } from '../../src/adapters/crypto/jwt-token-issuer';
import { sensitiveColumns, tableSpec } from '../../src/domain';
import { loadConfig, type AppConfig } from '../../src/main/config';
import { startServer, type RunningServer } from '../../src/main/server';
import type { Clock } from '../../src/application/ports';

export const TEST_SECRET = 'test-secret-0123456789abcdef0123456789abcdef';
/** Field encryption on in every suite, with a fixed key (two ids, to exercise the ring). */
export const TEST_FIELD_KEYS = `t1:${Buffer.alloc(32, 7).toString('base64')},t0:${Buffer.alloc(32, 3).toString('base64')}`;

export interface TestServer extends RunningServer {
  readonly config: AppConfig;
  token(userId: string, options?: { admin?: boolean }): string;
  client(userId: string, deviceId?: string): ApiClient;
}

/** Starts the real composition (config, container, Koa) on 127.0.0.1, port 0, over a shared test database. */
export async function startTestServer(db: Knex, env: Record<string, string> = {}, options: { logger?: Logger; clock?: Clock } = {}): Promise<TestServer> {
  // Rate limits off unless a test sets them: suites send hundreds of requests per user. Metrics
  // on a listener of their own, on a free port.
  const config = loadConfig({ JWT_SECRET: TEST_SECRET, PORT: '0', HOST: '127.0.0.1', METRICS_PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_IP_PER_MINUTE: '0', RATE_LIMIT_USER_PER_MINUTE: '0', FIELD_ENCRYPTION_KEYS: TEST_FIELD_KEYS, ...env });
  const running = await startServer(config, { db, logger: options.logger ?? pino({ level: 'silent' }), ...(options.clock ? { clock: options.clock } : {}) });
  const token = (userId: string, o: { admin?: boolean } = {}) => signToken(config.jwt, userId, o);
  return { ...running, config, token, client: (userId, deviceId) => new ApiClient(running.url, token(userId), deviceId) };
}

export interface HttpAnswer<T = any> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

/** A thin REST consumer of the sync API, as a test (or any app) would write one. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
    readonly deviceId?: string,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, ...(this.deviceId ? { 'x-device-id': this.deviceId } : {}), ...extra };
  }

  async pull(params: Record<string, string | number | null> = {}, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    const query = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
    const res = await fetch(`${this.baseUrl}/api/sync/pull?${query}`, { headers: this.headers(headers) });
    return { status: res.status, body: await res.json(), headers: res.headers };
  }

  async push(body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<HttpAnswer> {
    const res = await fetch(`${this.baseUrl}/api/sync/push`, {
      ...(signal ? { signal } : {}),
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/json', ...headers }),
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json(), headers: res.headers };
  }

  /** Pulls every page from `since` until `has_more` is false. */
  async pullAll(since: number | null, params: Record<string, string | number> = {}): Promise<{ pages: any[]; timestamp: number }> {
    const pages: any[] = [];
    let cursor = since;
    for (;;) {
      const r = await this.pull({ last_pulled_at: cursor, ...params });
      if (r.status !== 200) throw new Error(`pull failed: ${r.status} ${JSON.stringify(r.body)}`);
      pages.push(r.body);
      cursor = r.body.timestamp;
      if (!r.body.has_more) return { pages, timestamp: r.body.timestamp };
    }
  }
}

/** Reads what the test servers encrypt (their key ring is TEST_FIELD_KEYS). */
export const testCipher = new AesGcmFieldCipher(loadConfig({ JWT_SECRET: TEST_SECRET, FIELD_ENCRYPTION_KEYS: TEST_FIELD_KEYS }).fieldKeys.ring);

/** Rows of a synced table for one user as stored, sensitive columns decrypted (for "what was written" checks). */
export async function storedRows(db: Knex, table: string, userId?: string): Promise<any[]> {
  // Every table is keyed by (user_id, id) but the receipts, keyed by (user_id, push_id).
  const q = db(table).select('*').orderBy(['user_id', table === 'sync_push_receipts' ? 'push_id' : 'id']);
  if (userId) q.where('user_id', userId);
  const spec = tableSpec(table);
  const rows = await q;
  if (!spec) return rows;
  return rows.map((row: Record<string, unknown>) => {
    const out = { ...row };
    for (const column of sensitiveColumns(spec)) {
      if (typeof out[column] === 'string') out[column] = testCipher.decrypt(out[column] as string, { table, column, userId: String(row['user_id']), recordId: String(row['id']) })._unsafeUnwrap();
    }
    return out;
  });
}

/** Everything in the synced tables, for before/after comparisons. */
export async function snapshotAll(db: Knex): Promise<Record<string, any[]>> {
  const out: Record<string, any[]> = {};
  // storedRows decrypts the synced tables; the others it returns as stored. A failure is the test's.
  for (const t of ['captures', 'todos', 'thoughts', 'ideas', 'projects', 'sync_conflicts', 'sync_push_receipts']) out[t] = await storedRows(db, t);
  return out;
}

/** One row as stored, sensitive columns decrypted (undefined when absent). */
export async function storedRow(db: Knex, table: string, userId: string, id: string): Promise<any> {
  return (await storedRows(db, table, userId)).find((r) => r.id === id);
}
