import { request, type Agent } from 'node:http';
import type { BenchServer } from './support';

/** Shared by the push, pull and conflicts scenarios: deterministic captures and a bare HTTP client. */

const WORDS = 'call plumber leak kitchen sink tomorrow meeting idea app sync notes draft email budget travel Lisbon train ticket book dentist remind mum birthday gift buy milk bread coffee review pull request deploy fix bug write chapter read paper run 5k gym groceries'.split(' ');

/** Varied, deterministic text; `version` changes it, so an update is told from the create. */
export function note(i: number, version = 0): string {
  let x = (i + 1) * 2654435761 + version * 7919;
  const words: string[] = [];
  const n = 8 + (i % 17);
  for (let w = 0; w < n; w++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    words.push(WORDS[x % WORDS.length]!);
  }
  return `${words.join(' ')} #${(x % 100000).toString(36)} v${version}`;
}

export const captureId = (user: string, i: number): string => `${user}-c${i}`;
export const indexOf = (id: string): number => Number(id.slice(id.lastIndexOf('-c') + 2));

export const capture = (user: string, i: number) => ({
  id: captureId(user, i),
  type: 'text',
  raw_content: note(i),
  tags: JSON.stringify([WORDS[i % WORDS.length], WORDS[(i * 7) % WORDS.length]]),
  created_at: 1_736_760_000_000 + i * 37_013,
});

/** BENCH_SIZES=1000,10000 (default 1k, 10k and 100k). */
export function sizes(): number[] {
  const raw = process.env['BENCH_SIZES']?.trim();
  const list = raw ? raw.split(',').map((s) => Number(s.trim())) : [1000, 10_000, 100_000];
  for (const n of list) if (!Number.isInteger(n) || n <= 0) throw new Error(`BENCH_SIZES: ${raw} is not a list of positive integers`);
  return list;
}

/**
 * Requests that failed with ECONNRESET on a reused keep-alive socket and were sent again. The
 * server closes a connection idle for 5 s; a request written to it in the same instant is reset
 * before the server reads it (more likely when the event loop is busy, as with in-process PGlite),
 * so sending it once more is safe. Node's documentation of `request.reusedSocket` does the same.
 */
export let staleSocketRetries = 0;

export function send(url: string, method: string, headers: Record<string, string>, body?: string, agent?: Agent, retried = false): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ...(agent ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!retried && req.reusedSocket && e.code === 'ECONNRESET') {
        staleSocketRetries++;
        resolve(send(url, method, headers, body, agent, true));
      } else reject(e);
    });
    req.end(body);
  });
}

/** Where a server listens, and tokens it accepts: an in-process BenchServer or a child process. */
export type Endpoint = Pick<BenchServer, 'url' | 'token'>;

export interface PushAnswer {
  timestamp: number;
  conflicts: Array<{ table: string; id: string; type: string; resolution: string; client_columns: string[]; server_columns: string[] }>;
}

export async function push(server: Endpoint, user: string, body: object, deviceId?: string): Promise<PushAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${server.token(user)}`, 'content-type': 'application/json', ...(deviceId ? { 'x-device-id': deviceId } : {}) };
  const r = await send(`${server.url}/api/sync/push`, 'POST', headers, JSON.stringify(body));
  if (r.status !== 200) throw new Error(`push failed: ${r.status} ${r.body.toString().slice(0, 300)}`);
  return JSON.parse(r.body.toString()) as PushAnswer;
}

/** Pulls every capture of `user` from the beginning, `limit` rows a page; calls `each` on each row. */
export async function pullAll(server: Endpoint, user: string, limit: number, each: (row: Record<string, unknown>) => void): Promise<number> {
  const headers = { authorization: `Bearer ${server.token(user)}`, 'accept-encoding': 'identity' };
  let cursor = 0;
  for (;;) {
    const r = await send(`${server.url}/api/sync/pull?last_pulled_at=${cursor}&tables=captures&limit=${limit}`, 'GET', headers);
    if (r.status !== 200) throw new Error(`pull failed: ${r.status} ${r.body.toString().slice(0, 300)}`);
    const page = JSON.parse(r.body.toString());
    for (const row of page.changes.captures.created) each(row);
    for (const row of page.changes.captures.updated) each(row);
    cursor = page.timestamp;
    if (!page.has_more) return cursor;
  }
}

/** Checks that the pulled captures of `user` are exactly 0..n-1, each with `note(i, version)`. */
export async function checkPulled(server: Endpoint, user: string, n: number, version: number): Promise<void> {
  const seen = new Set<number>();
  await pullAll(server, user, 10_000, (row) => {
    const i = indexOf(String(row['id']));
    if (!(i >= 0 && i < n) || seen.has(i)) throw new Error(`unexpected or repeated record ${String(row['id'])}`);
    if (row['raw_content'] !== note(i, version)) throw new Error(`record ${String(row['id'])} arrived with another value`);
    seen.add(i);
  });
  if (seen.size !== n) throw new Error(`found ${seen.size} of ${n} records`);
}

export const rate = (n: number, ms: number): number => Math.round(n / (ms / 1000));

/** A small untimed push and pull first, so the first measured size does not pay for JIT and connections. */
export async function warmUp(server: Endpoint, user: string): Promise<void> {
  await push(server, user, { last_pulled_at: null, changes: { captures: { created: Array.from({ length: 200 }, (_, i) => capture(user, i)) } } }, `${user}-phone`);
  await checkPulled(server, user, 200, 0);
}
