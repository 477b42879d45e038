import type { Knex } from 'knex';
import { openDatabase } from '../src/adapters/postgres/connection';
import { capture, indexOf, note, pullAll, push, rate, sizes, staleSocketRetries, warmUp } from './data';
import { elapsed, report, startBenchServer, type BenchServer } from './support';

/**
 * A fresh client pulls N captures over HTTP, `limit` rows a page, JSON parsed. Limit, same run,
 * same rows: read straight through the driver in (last_modified_at, id) pages of the same size,
 * raw_content decrypted as the server does, and JSON.stringify'ed.
 */

const PAGE = 1000;
const BATCH = 1000;

function checker(n: number): { see: (id: string, value: unknown) => void; done: () => void } {
  const seen = new Uint8Array(n);
  let count = 0;
  return {
    see: (id, value) => {
      const i = indexOf(id);
      if (!(i >= 0 && i < n) || seen[i]) throw new Error(`unexpected or repeated record ${id}`);
      if (value !== note(i)) throw new Error(`record ${id} arrived with another value`);
      seen[i] = 1;
      count++;
    },
    done: () => {
      if (count !== n) throw new Error(`got ${count} of ${n} records`);
    },
  };
}

async function readDirect(server: BenchServer, db: Knex, user: string, n: number): Promise<{ ms: number; bytes: number }> {
  const check = checker(n);
  let bytes = 0;
  let after: [number, string] | undefined;
  const start = process.hrtime.bigint();
  for (;;) {
    const q = db('captures').where({ user_id: user, _status: 'active' });
    if (after) q.andWhereRaw('(last_modified_at, id) > (?, ?)', after);
    // One row more than a page says whether another page follows (no empty last query).
    const fetched: Array<Record<string, unknown>> = await q.orderBy([{ column: 'last_modified_at' }, { column: 'id' }]).limit(PAGE + 1).select('*');
    const rows = fetched.slice(0, PAGE);
    const records: Array<Record<string, unknown>> = rows.map((row) => {
      const id = String(row['id']);
      const plain = server.cipher.decrypt(String(row['raw_content']), { table: 'captures', column: 'raw_content', userId: user, recordId: id });
      if (plain.isErr()) throw new Error(`record ${id} did not decrypt`);
      return { ...row, raw_content: plain.value };
    });
    bytes += JSON.stringify({ changes: { captures: { created: records, updated: [], deleted: [] } } }).length;
    for (const r of records) check.see(String(r['id']), r.raw_content);
    if (fetched.length <= PAGE) break;
    const last = rows[rows.length - 1]!;
    after = [Number(last['last_modified_at']), String(last['id'])];
  }
  const ms = elapsed(start);
  check.done();
  return { ms, bytes };
}

export async function benchPull(): Promise<void> {
  const server = await startBenchServer();
  const limitDb = server.database === 'postgres' ? openDatabase(server.target) : server.db;
  const run = Date.now().toString(36);
  const users: string[] = [`pull-warm-${run}`];
  try {
    await warmUp(server, users[0]!);
    await limitDb.raw('select 1');
    for (const n of sizes()) {
      const user = `pull-${n}-${run}`;
      users.push(user);
      for (let b = 0; b < n; b += BATCH) {
        await push(server, user, { last_pulled_at: null, changes: { captures: { created: Array.from({ length: Math.min(BATCH, n - b) }, (_, k) => capture(user, b + k)) } } }, `${user}-phone`);
      }
      const check = checker(n);
      const start = process.hrtime.bigint();
      await pullAll(server, user, PAGE, (row) => check.see(String(row['id']), row['raw_content']));
      const ms = elapsed(start);
      check.done();
      const direct = await readDirect(server, limitDb, user, n);
      const line = { database: server.database, ...(staleSocketRetries ? { stale_socket_retries_so_far: staleSocketRetries } : {}), records: n, page: PAGE };
      report({ name: 'pull', ...line, ms: Math.round(ms), records_per_s: rate(n, ms), ratio_to_limit: Number((direct.ms / ms).toFixed(3)) });
      report({ name: 'pull.limit', ...line, ms: Math.round(direct.ms), records_per_s: rate(n, direct.ms) });
    }
  } finally {
    await server.forget(users);
    if (limitDb !== server.db) await limitDb.destroy();
    await server.close();
  }
}
