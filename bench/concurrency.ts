import { loadLine, RECORDS_PER_PUSH, runLoad } from './load';
import { databaseName, forgetChildUsers, openBenchDatabase, spawnServer } from './server-process';
import { report } from './support';

/**
 * 50 and 200 simulated clients (two devices per user) against one server process of its own,
 * rate limits off: each pulls then pushes 20 captures in a loop for BENCH_LOAD_SECONDS (10 s).
 * Throughput, latency percentiles and errors; every record checked afterwards (bench/load.ts).
 *
 * Two loads. `closed`: each client starts again the moment it is answered, so the server is
 * saturated and latency is set by queueing (Little's law: mean latency = clients / throughput).
 * `paced`: each client syncs again about PACE_MS after its last sync, the mobile client's debounce
 * (a phone that keeps writing syncs at most that often): 200 very active phones. Targets at 200
 * clients: no errors, p95 under 250 ms; docs/performance.md says which load they are judged on.
 */

export const CLIENTS = [50, 200];
export const loadSeconds = (): number => Number(process.env['BENCH_LOAD_SECONDS'] ?? 10);
/** The mobile client's default debounce after a local write (createSyncClient's debounceMs). */
export const PACE_MS = 2000;

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
    const loads = [...CLIENTS.map((clients) => ({ clients, pauseMs: undefined })), { clients: CLIENTS[CLIENTS.length - 1]!, pauseMs: PACE_MS }];
    for (const { clients, pauseMs } of loads) {
      const mode = pauseMs ? 'paced' : 'closed';
      const result = await runLoad({ urls: [server.url], clients, seconds: loadSeconds(), prefix: `load-${clients}-${mode}-${run}`, db, serverCpuMs: () => server.cpuMs(), ...(pauseMs ? { pauseMs } : {}) });
      users.push(...result.users);
      const line = loadLine(result);
      report({
        name: 'concurrency',
        database: databaseName(),
        processes: 1,
        clients,
        load: mode,
        ...(pauseMs ? { pause_ms: pauseMs } : {}),
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
