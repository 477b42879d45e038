import { CLIENTS, loadSeconds } from './concurrency';
import { availableParallelism } from 'node:os';
import { loadLine, RECORDS_PER_PUSH, runLoad, type LoadResult } from './load';
import { databaseName, databaseUrl, forgetChildUsers, loggedByAll, openBenchDatabase, spawnServer, type ChildServer } from './server-process';
import { report } from './support';

/**
 * The concurrency scenario's load (200 clients, two devices per user) spread round-robin over 1, 2
 * and 4 server processes on one PostgreSQL database; the two devices of a user talk to different
 * processes. Throughput against 1 process, same run (target: 2 processes >= 1.6x when the database
 * is not the bottleneck); every record checked and the rows counted per user afterwards. PGlite
 * lives inside one process and cannot be shared, so there the scenario says it was skipped.
 * This machine has 2 cores shared by the servers, PostgreSQL and the load generator.
 */

const PROCESSES = [1, 2, 4];
const TARGET_RATIO = 1.6;

export async function benchScaleOut(): Promise<void> {
  if (!databaseUrl()) {
    report({ name: 'scale_out', database: databaseName(), skipped: true, reason: 'PGlite is embedded in one server process and cannot be shared by several; set DATABASE_URL to run this scenario on PostgreSQL' });
    return;
  }
  const db = openBenchDatabase();
  const run = Date.now().toString(36);
  const clients = CLIENTS[CLIENTS.length - 1]!;
  const users: string[] = [];
  let single: number | undefined;
  try {
    for (const processes of PROCESSES) {
      const servers: ChildServer[] = [];
      let result: LoadResult;
      try {
        // One after the other: each runs the (already applied) migrations at start.
        for (let i = 0; i < processes; i++) servers.push(await spawnServer());
        const urls = servers.map((s) => s.url);
        const warm = await runLoad({ urls, clients: 10 * processes, seconds: 1, prefix: `scale-warm-${processes}-${run}`, db });
        users.push(...warm.users);
        result = await runLoad({ urls, clients, seconds: loadSeconds(), prefix: `scale-${processes}-${run}`, db, serverCpuMs: () => servers.reduce((ms, s) => ms + s.cpuMs(), 0) });
        users.push(...result.users);
      } finally {
        // Stopped before the report: what they log while flushing their sync logs counts too.
        for (const s of servers) await s.stop();
      }
      const line = loadLine(result);
      const perS = Number(line['requests_per_s']);
      single ??= perS;
      const ratio = Number((perS / single).toFixed(2));
      const logged = loggedByAll(servers);
      report({
        name: 'scale_out',
        database: databaseName(),
        processes,
        clients,
        users: result.users.length,
        records_per_push: RECORDS_PER_PUSH,
        ...line,
        throughput_vs_1_process: ratio,
        ...(processes === 2 ? { target: `>= ${TARGET_RATIO}x of 1 process`, target_met: ratio >= TARGET_RATIO } : {}),
        cores: availableParallelism(),
        rows_checked: 'every user counted in SQL and pulled in full: no record lost or duplicated',
        ...(Object.keys(logged.messages).length ? { server_log: logged.messages, sync_log_entries_dropped: logged.sync_log_entries_dropped } : {}),
      });
    }
  } finally {
    await forgetChildUsers(db, users);
    await db?.destroy();
  }
}
