import type { Knex } from 'knex';
import { openDatabase } from '../src/adapters/postgres/connection';
import { capture, checkPulled, note, push, rate, sizes, staleSocketRetries, warmUp } from './data';
import { elapsed, report, startBenchServer, type BenchServer } from './support';

/**
 * One client pushes N new captures over HTTP in batches of the server's maximum, then N updates
 * of the same rows. Limit, same run, same database, same table: the same rows (raw_content
 * encrypted as the server stores it) written straight through the driver, one multi-row
 * INSERT … ON CONFLICT (user_id, id) DO UPDATE per batch, one transaction per batch.
 */

const BATCH = 1000;

async function pushPhase(server: BenchServer, user: string, n: number, version: number, lastPulledAt: number | null): Promise<{ ms: number; timestamp: number }> {
  let timestamp = 0;
  const start = process.hrtime.bigint();
  for (let b = 0; b < n; b += BATCH) {
    const count = Math.min(BATCH, n - b);
    const records = Array.from({ length: count }, (_, k) =>
      version === 0 ? capture(user, b + k) : { id: capture(user, b + k).id, raw_content: note(b + k, version), _changed: 'raw_content' },
    );
    const answer = await push(server, user, { last_pulled_at: lastPulledAt, changes: { captures: version === 0 ? { created: records } : { updated: records } } }, `${user}-phone`);
    if (answer.conflicts.length) throw new Error(`unexpected conflicts: ${answer.conflicts.length}`);
    timestamp = answer.timestamp;
  }
  return { ms: elapsed(start), timestamp };
}

async function limitPhase(server: BenchServer, db: Knex, user: string, n: number, version: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let b = 0; b < n; b += BATCH) {
    const count = Math.min(BATCH, n - b);
    const rows = Array.from({ length: count }, (_, k) => {
      const c = capture(user, b + k);
      return { ...c, user_id: user, raw_content: server.cipher.encrypt(note(b + k, version), { table: 'captures', column: 'raw_content', userId: user, recordId: c.id }) };
    });
    await db.transaction(async (tx) => {
      await tx('captures').insert(rows).onConflict(['user_id', 'id']).merge(['raw_content']);
    });
  }
  return elapsed(start);
}

/** Reads the limit's rows back through the driver: exactly n, each with note(i, version). */
async function checkLimit(server: BenchServer, db: Knex, user: string, n: number, version: number): Promise<void> {
  const rows: Array<{ id: string; raw_content: string }> = await db('captures').where({ user_id: user }).select('id', 'raw_content');
  if (rows.length !== n) throw new Error(`limit wrote ${rows.length} of ${n} rows`);
  for (const row of rows) {
    const i = Number(row.id.slice(row.id.lastIndexOf('-c') + 2));
    const value = server.cipher.decrypt(row.raw_content, { table: 'captures', column: 'raw_content', userId: user, recordId: row.id });
    if (value.isErr() || value.value !== note(i, version)) throw new Error(`limit row ${row.id} has another value`);
  }
}

export async function benchPush(): Promise<void> {
  const server = await startBenchServer();
  const limitDb = server.database === 'postgres' ? openDatabase(server.target) : server.db;
  const run = Date.now().toString(36);
  const users: string[] = [`push-warm-${run}`];
  try {
    await warmUp(server, users[0]!);
    await limitDb.raw('select 1');
    for (const n of sizes()) {
      const user = `push-${n}-${run}`;
      const direct = `push-limit-${n}-${run}`;
      users.push(user, direct);
      let lastPulledAt: number | null = null;
      for (const [version, phase] of [[0, 'create'], [1, 'update']] as const) {
        const pushed = await pushPhase(server, user, n, version, lastPulledAt);
        lastPulledAt = pushed.timestamp;
        await checkPulled(server, user, n, version);
        const limitMs = await limitPhase(server, limitDb, direct, n, version);
        await checkLimit(server, limitDb, direct, n, version);
        const line = { database: server.database, ...(staleSocketRetries ? { stale_socket_retries_so_far: staleSocketRetries } : {}), records: n, batch: BATCH };
        report({ name: `push.${phase}`, ...line, ms: Math.round(pushed.ms), records_per_s: rate(n, pushed.ms), ratio_to_limit: Number((limitMs / pushed.ms).toFixed(3)) });
        report({ name: `push.${phase}.limit`, ...line, ms: Math.round(limitMs), records_per_s: rate(n, limitMs) });
      }
    }
  } finally {
    await server.forget(users);
    if (limitDb !== server.db) await limitDb.destroy();
    await server.close();
  }
}
