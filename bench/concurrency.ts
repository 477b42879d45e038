import { loadLine, RECORDS_PER_PUSH, runLoad } from './load';
import { databaseName, forgetChildUsers, openBenchDatabase, spawnServer } from './server-process';
import { report } from './support';

/**
 * 50 and 200 simulated clients (two devices per user) against one server process of its own,
 * rate limits off: each pulls then pushes 20 captures in a loop for BENCH_LOAD_SECONDS (10 s).
 * Throughput, latency percentiles and errors; every record checked afterwards (bench/load.ts).
 * Targets at 200 clients: no errors, p95 under 250 ms.
 */

export const CLIENTS = [50, 200];
export const loadSeconds = (): number => Number(process.env['BENCH_LOAD_SECONDS'] ?? 10);

/** What the server logged so far (warnings and errors), when it logged anything. */
export function serverLog(logged: { messages: Record<string, number>; sync_log_entries_dropped: number }): Record<string, unknown> {
  return Object.keys(logged.messages).length ? { server_log_so_far: logged.messages, sync_log_entries_dropped: logged.sync_log_entries_dropped } : {};
}

export async function benchConcurrency(): Promise<void> {
  const db = openBenchDatabase();
  const run = Date.now().toString(36);
  const users: string[] = [];
  const server = await spawnServer();
  try {
    // Untimed warm-up: the server's JIT, its connection pool and the bench's sockets.
    const warm = await runLoad({ urls: [server.url], clients: 20, seconds: 1, prefix: `load-warm-${run}`, db });
    users.push(...warm.users);
    for (const clients of CLIENTS) {
      const result = await runLoad({ urls: [server.url], clients, seconds: loadSeconds(), prefix: `load-${clients}-${run}`, db, serverCpuMs: () => server.cpuMs() });
      users.push(...result.users);
      const line = loadLine(result);
      report({
        name: 'concurrency',
        database: databaseName(),
        processes: 1,
        clients,
        users: result.users.length,
        records_per_push: RECORDS_PER_PUSH,
        ...line,
        ...(clients === 200 ? { target: 'errors 0, p95 < 250 ms', target_met: result.errors === 0 && result.latency.p95 < 250 } : {}),
        server_rss_mb: server.memory().rss_mb,
        ...serverLog(server.logged()),
      });
    }
  } finally {
    await server.stop();
    await forgetChildUsers(db, users);
    await db?.destroy();
  }
}
