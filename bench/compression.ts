import { request } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { gzipSync, strToU8 } from 'fflate';
import { elapsed, report, startBenchServer, type BenchServer } from './support';

/**
 * Bytes on the wire and time for a 10k-record push and pull, compressed and not (issue: real
 * phone networks). Each run checks its own result: every record arrived with its value.
 */

const N = 10_000;
const BATCH = 1000;

const WORDS = 'call plumber leak kitchen sink tomorrow meeting idea app sync notes draft email budget travel Lisbon train ticket book dentist remind mum birthday gift buy milk bread coffee review pull request deploy fix bug write chapter read paper run 5k gym groceries'.split(' ');

/** Varied, deterministic text (a fixed pseudo-random sequence), so compression is not flattered. */
function note(i: number): string {
  let x = (i + 1) * 2654435761;
  const words: string[] = [];
  const n = 8 + (i % 17);
  for (let w = 0; w < n; w++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    words.push(WORDS[x % WORDS.length]!);
  }
  return `${words.join(' ')} #${(x % 100000).toString(36)}`;
}

const capture = (user: string, i: number) => ({
  id: `${user}-c${i}`,
  type: 'text',
  raw_content: note(i),
  tags: JSON.stringify([WORDS[i % WORDS.length], WORDS[(i * 7) % WORDS.length]]),
  created_at: 1_736_760_000_000 + i * 37_013,
});

/** One raw HTTP exchange, the body as received (compressed bytes stay compressed). */
export function send(url: string, method: string, headers: Record<string, string>, body?: Uint8Array | string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function pushAll(server: BenchServer, user: string, gzip: boolean): Promise<void> {
  const token = server.token(user);
  let bytes = 0;
  const start = process.hrtime.bigint();
  for (let b = 0; b < N; b += BATCH) {
    const json = JSON.stringify({ changes: { captures: { created: Array.from({ length: BATCH }, (_, i) => capture(user, b + i)) } } });
    const body = gzip ? gzipSync(strToU8(json)) : json;
    bytes += typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) };
    const r = await send(`${server.url}/api/sync/push`, 'POST', headers, body);
    if (r.status !== 200) throw new Error(`push failed: ${r.status} ${r.body.toString().slice(0, 200)}`);
  }
  const ms = elapsed(start);
  report({ name: 'compression.push', encoding: gzip ? 'gzip' : 'identity', database: server.database, records: N, bytes_sent: bytes, ms: Math.round(ms), records_per_s: Math.round(N / (ms / 1000)) });
}

async function pullAll(server: BenchServer, user: string, encoding: 'identity' | 'gzip' | 'br'): Promise<void> {
  const token = server.token(user);
  let bytes = 0;
  let cursor = 0;
  let received = 0;
  const start = process.hrtime.bigint();
  for (;;) {
    const r = await send(`${server.url}/api/sync/pull?last_pulled_at=${cursor}&tables=captures&limit=${BATCH * 5}`, 'GET', { authorization: `Bearer ${token}`, 'accept-encoding': encoding });
    bytes += r.body.length;
    const sent = r.headers['content-encoding'];
    if ((encoding === 'identity' && sent !== undefined) || (encoding !== 'identity' && sent !== encoding)) throw new Error(`asked ${encoding}, got ${String(sent)}`);
    const text = sent === 'gzip' ? gunzipSync(r.body) : sent === 'br' ? brotliDecompressSync(r.body) : r.body;
    const page = JSON.parse(text.toString());
    for (const row of page.changes.captures.created) {
      const i = Number(String(row.id).split('-c')[1]);
      if (row.raw_content !== capture(user, i).raw_content) throw new Error(`record ${row.id} arrived with another value`);
      received++;
    }
    cursor = page.timestamp;
    if (!page.has_more) break;
  }
  const ms = elapsed(start);
  if (received !== N) throw new Error(`pulled ${received} of ${N} records`);
  report({ name: 'compression.pull', encoding, database: server.database, records: N, bytes_received: bytes, ms: Math.round(ms), records_per_s: Math.round(N / (ms / 1000)) });
}

export async function benchCompression(): Promise<void> {
  const server = await startBenchServer();
  const run = Date.now().toString(36);
  const users = [`zip-plain-${run}`, `zip-gzip-${run}`] as const;
  try {
    await pushAll(server, users[0], false);
    await pushAll(server, users[1], true);
    for (const encoding of ['identity', 'gzip', 'br'] as const) await pullAll(server, users[0], encoding);
  } finally {
    await server.forget(users);
    await server.close();
  }
}
