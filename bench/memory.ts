import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { send } from './compression';
import { capture, indexOf, note, rate } from './data';
import { childToken, databaseName, databaseUrl, forgetChildUsers, openBenchDatabase, spawnServer, type ChildServer } from './server-process';
import { serverLog } from './concurrency';
import { elapsed, report } from './support';

/**
 * The server's memory while one client pulls 100k captures: the server runs in a process of its
 * own (`node --import tsx src/main/server.ts`), so /proc/<pid>/status is its own. Seeded over HTTP
 * (pushes of 1,000), then the peak is reset (`5` to /proc/<pid>/clear_refs) and a client pulls
 * everything as a phone does (the server's default page size, gzip), checking every record.
 * Reported: RSS before the pull, the peak during it (VmHWM), RSS after. Target: peak < 300 MB.
 */

const N = 100_000;
const SEED_BATCH = 1000;
const TARGET_MB = 300;

async function seed(server: ChildServer, user: string): Promise<void> {
  const headers = { authorization: `Bearer ${childToken(user)}`, 'content-type': 'application/json', 'x-device-id': 'seed' };
  for (let b = 0; b < N; b += SEED_BATCH) {
    const created = Array.from({ length: Math.min(SEED_BATCH, N - b) }, (_, k) => capture(user, b + k));
    const r = await send(`${server.url}/api/sync/push`, 'POST', headers, JSON.stringify({ last_pulled_at: null, changes: { captures: { created } } }));
    if (r.status !== 200) throw new Error(`seeding failed: ${r.status} ${r.body.toString().slice(0, 300)}`);
  }
}

/** Pulls every table from the beginning with the server's default page size, gzip; checks the captures. */
async function pullEverything(server: ChildServer, user: string): Promise<{ pages: number; bytes: number }> {
  const headers = { authorization: `Bearer ${childToken(user)}`, 'accept-encoding': 'gzip', 'x-device-id': 'fresh-phone' };
  const seen = new Uint8Array(N);
  let count = 0;
  let pages = 0;
  let bytes = 0;
  let cursor = 0;
  for (;;) {
    const r = await send(`${server.url}/api/sync/pull?last_pulled_at=${cursor}`, 'GET', headers);
    if (r.status !== 200) throw new Error(`pull failed: ${r.status} ${r.body.toString().slice(0, 300)}`);
    pages++;
    bytes += r.body.length;
    const text = r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;
    const page = JSON.parse(text.toString());
    for (const [table, changes] of Object.entries(page.changes as Record<string, { created: any[]; updated: any[]; deleted: string[] }>)) {
      const rows = [...changes.created, ...changes.updated];
      if (table !== 'captures') {
        if (rows.length || changes.deleted.length) throw new Error(`unexpected ${table} rows for ${user}`);
        continue;
      }
      for (const row of rows) {
        const i = indexOf(String(row.id));
        if (!(i >= 0 && i < N) || seen[i]) throw new Error(`unexpected or repeated record ${row.id}`);
        if (row.raw_content !== note(i) || row.tags !== capture(user, i).tags) throw new Error(`record ${row.id} arrived with other values`);
        seen[i] = 1;
        count++;
      }
    }
    cursor = page.timestamp;
    if (!page.has_more) break;
  }
  if (count !== N) throw new Error(`pulled ${count} of ${N} records`);
  return { pages, bytes };
}

export async function benchMemory(): Promise<void> {
  if (databaseUrl()) {
    await measure({}, undefined);
    // With a decrypt thread (off by default): what it costs in memory.
    return measure({ DECRYPT_THREADS: '1' }, undefined);
  }
  // PGlite: in memory (as the other scenarios run it) and in a data folder (as `npm start` runs it).
  await measure({}, 'memory://');
  const dir = mkdtempSync(join(tmpdir(), 'bench-pglite-'));
  try {
    await measure({ PGLITE_DATA_DIR: join(dir, 'pglite') }, 'folder');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(env: Record<string, string>, pgliteDataDir: string | undefined): Promise<void> {
  const db = openBenchDatabase();
  const user = `memory-${Date.now().toString(36)}`;
  const server = await spawnServer(env);
  try {
    const started = server.memory();
    await seed(server, user);
    const seeded = server.memory();
    // Let the seeding's garbage go before the baseline (the server is idle now).
    await new Promise((r) => setTimeout(r, 500));
    const before = server.memory();
    const reset = server.resetPeak();
    const start = process.hrtime.bigint();
    const pulled = await pullEverything(server, user);
    const ms = elapsed(start);
    const after = server.memory();
    const peak = reset ? after.hwm_mb : NaN;
    report({
      name: 'memory.server_pull',
      database: databaseName(),
      ...(pgliteDataDir ? { pglite_data_dir: pgliteDataDir } : {}),
      decrypt_threads: Number(env['DECRYPT_THREADS'] ?? 0),
      records: N,
      pages: pulled.pages,
      bytes_received: pulled.bytes,
      ms: Math.round(ms),
      records_per_s: rate(N, ms),
      server_rss_at_start_mb: started.rss_mb,
      server_peak_while_seeding_mb: seeded.hwm_mb,
      server_rss_before_pull_mb: before.rss_mb,
      server_peak_during_pull_mb: reset ? peak : undefined,
      server_peak_since_start_mb: reset ? undefined : after.hwm_mb,
      server_rss_after_pull_mb: after.rss_mb,
      target_mb: TARGET_MB,
      target_met: reset ? peak < TARGET_MB : after.hwm_mb < TARGET_MB,
      ...serverLog(server.logged()),
    });
  } finally {
    await server.stop();
    await forgetChildUsers(db, [user]);
    await db?.destroy();
  }
}
