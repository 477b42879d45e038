import { Agent } from 'node:http';
import { availableParallelism } from 'node:os';
import type { Knex } from 'knex';
import { capture, indexOf, note, send, staleSocketRetries } from './data';
import { childToken, machineCpu } from './server-process';

/**
 * Many simulated clients against one or more server processes (the concurrency and scale-out
 * scenarios). Client c belongs to user ⌊c/2⌋ (two devices per user) and talks to server c mod k,
 * so with several processes the two devices of a user sync through different processes. Each
 * client loops until the deadline: pull (every page, from its cursor, with its device id) then
 * push 20 new captures. Afterwards every client catches up and must hold exactly what its partner
 * device had accepted; a full pull of every user must return each accepted record once, with its
 * value, and nothing else; on PostgreSQL the rows are also counted per user in SQL.
 */

export const RECORDS_PER_PUSH = 20;

export interface LoadOptions {
  readonly urls: readonly string[];
  readonly clients: number;
  readonly seconds: number;
  /** Prefix of the user ids (unique per run). */
  readonly prefix: string;
  /** PostgreSQL: the bench's own connection, to count rows per user. */
  readonly db: Knex | null;
  /** The server processes' CPU time so far, in ms (to report what they used during the load). */
  readonly serverCpuMs?: () => number;
  /**
   * Paced clients: after each pull + push a client waits about this long (uniformly 0.5–1.5×, and
   * it starts at a random point of one period), as a phone that syncs again only after its next
   * debounced write. Absent: a closed loop, each client starting again at once.
   */
  readonly pauseMs?: number;
}

export interface LoadResult {
  readonly users: string[];
  readonly ms: number;
  readonly requests: number;
  readonly errors: number;
  readonly error_samples: string[];
  readonly records_pushed: number;
  readonly records_pulled: number;
  readonly latency: { p50: number; p95: number; p99: number; max: number };
  readonly push_p95: number;
  readonly pull_p95: number;
  /** CPU used during the load, in % of one core: by this (load generator) process, by the servers, and by the whole machine (all processes, all cores: 100 x cores is all of it). */
  readonly stale_socket_retries: number;
  readonly cpu: { load_generator_pct: number; servers_pct: number; machine_busy_pct: number };
}

interface Client {
  readonly index: number;
  readonly user: string;
  readonly device: string;
  readonly url: string;
  readonly token: string;
  cursor: number | null;
  seq: number;
  /** Records the server accepted from this client (its captures' sequence numbers). */
  accepted: number;
  /** Pushes whose answer was not a 200: their records may or may not be on the server. */
  readonly unsure: Set<number>;
  /** What this client pulled: id -> raw_content. */
  readonly seen: Map<string, unknown>;
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

const deviceUser = (c: Client): string => `${c.user}.${c.device}`;

interface PullPage {
  changes: { captures: { created: Array<Record<string, unknown>>; updated: Array<Record<string, unknown>>; deleted: string[] } };
  timestamp: number;
  has_more: boolean;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return Number(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!.toFixed(1));
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const clients: Client[] = Array.from({ length: options.clients }, (_, c) => {
    const user = `${options.prefix}-u${Math.floor(c / 2)}`;
    return { index: c, user, device: `d${c}`, url: options.urls[c % options.urls.length]!, token: childToken(user), cursor: null, seq: 0, accepted: 0, unsure: new Set(), seen: new Map() };
  });
  const users = [...new Set(clients.map((c) => c.user))];
  const pushLatencies: number[] = [];
  const pullLatencies: number[] = [];
  let errors = 0;
  const samples: string[] = [];
  let pulled = 0;
  const fail = (what: string) => {
    errors++;
    if (samples.length < 5) samples.push(what.slice(0, 300));
  };

  const pull = async (c: Client, latencies: number[] | null, deviceId: boolean): Promise<PullPage | null> => {
    const t = performance.now();
    try {
      const r = await send(
        `${c.url}/api/sync/pull?last_pulled_at=${c.cursor ?? 0}&tables=captures`,
        'GET',
        {
          authorization: `Bearer ${c.token}`,
          'accept-encoding': 'identity',
          ...(deviceId ? { 'x-device-id': c.device } : {}),
        },
        undefined,
        agent,
      );
      latencies?.push(performance.now() - t);
      if (r.status !== 200) {
        fail(`pull ${r.status} ${r.body}`);
        return null;
      }
      return JSON.parse(r.body.toString()) as PullPage;
    } catch (e) {
      fail(`pull ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
  };

  /** Pulls every page from the client's cursor; false if a request failed. */
  const pullAll = async (c: Client, latencies: number[] | null): Promise<boolean> => {
    for (;;) {
      const page = await pull(c, latencies, true);
      if (!page) return false;
      for (const row of [...page.changes.captures.created, ...page.changes.captures.updated]) {
        c.seen.set(String(row['id']), row['raw_content']);
        pulled++;
      }
      c.cursor = page.timestamp;
      if (!page.has_more) return true;
    }
  };

  const push = async (c: Client): Promise<void> => {
    const first = c.seq;
    const created = Array.from({ length: RECORDS_PER_PUSH }, (_, k) => capture(deviceUser(c), first + k));
    c.seq += RECORDS_PER_PUSH;
    const body = JSON.stringify({ last_pulled_at: c.cursor, push_id: `${c.device}-${first}`, changes: { captures: { created } } });
    const t = performance.now();
    try {
      const r = await send(`${c.url}/api/sync/push`, 'POST', { authorization: `Bearer ${c.token}`, 'content-type': 'application/json', 'x-device-id': c.device }, body, agent);
      pushLatencies.push(performance.now() - t);
      if (r.status === 200) {
        // Accepted batches are contiguous from 0 unless one failed: keep the failed ones apart.
        c.accepted += RECORDS_PER_PUSH;
        return;
      }
      fail(`push ${r.status} ${r.body}`);
    } catch (e) {
      fail(`push ${e instanceof Error ? e.message : String(e)}`);
    }
    for (let k = 0; k < RECORDS_PER_PUSH; k++) c.unsure.add(first + k);
  };

  const retriesBefore = staleSocketRetries;
  const deadline = Date.now() + options.seconds * 1000;
  const cpu0 = { self: process.cpuUsage(), servers: options.serverCpuMs?.() ?? NaN, machine: machineCpu() };
  const start = performance.now();
  const pause = options.pauseMs;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, Math.min(ms, deadline - Date.now()))));
  await Promise.all(
    clients.map(async (c) => {
      if (pause) await sleep(Math.random() * pause);
      while (Date.now() < deadline) {
        await pullAll(c, pullLatencies);
        if (Date.now() >= deadline) break;
        await push(c);
        if (pause) await sleep(pause * (0.5 + Math.random()));
      }
    }),
  );
  const ms = performance.now() - start;
  const self = process.cpuUsage(cpu0.self);
  const machine = machineCpu();
  const cpu = {
    load_generator_pct: Math.round(((self.user + self.system) / 1000 / ms) * 100),
    servers_pct: Math.round((((options.serverCpuMs?.() ?? NaN) - cpu0.servers) / ms) * 100),
    machine_busy_pct: Math.round(((machine.busy - cpu0.machine.busy) / (machine.total - cpu0.machine.total)) * 100 * availableParallelism()),
  };
  const pushedRecords = clients.reduce((n, c) => n + c.accepted, 0);
  const pulledDuringLoad = pulled;

  // ---- checks (untimed) ----
  const partner = (c: Client) => clients[c.index ^ 1];
  const owns = (c: Client, id: string): number | undefined => {
    const prefix = `${deviceUser(c)}-c`;
    return id.startsWith(prefix) ? indexOf(id) : undefined;
  };
  /** The sequence numbers the server may hold for client c: accepted ones must be there, unsure ones may. */
  const mayHold = (c: Client, seq: number): 'must' | 'may' | 'no' => (c.unsure.has(seq) ? 'may' : seq < c.seq ? 'must' : 'no');

  for (const c of clients) {
    if (!(await pullAll(c, null))) throw new Error(`client ${c.device} could not catch up: ${samples.join(' | ')}`);
    const p = partner(c);
    let fromPartner = 0;
    for (const [id, value] of c.seen) {
      const seq = p ? owns(p, id) : undefined;
      if (p === undefined || seq === undefined || mayHold(p, seq) === 'no') throw new Error(`client ${c.device} pulled ${id}, which its partner never pushed`);
      if (value !== note(seq)) throw new Error(`client ${c.device} pulled ${id} with another value`);
      if (mayHold(p, seq) === 'must') fromPartner++;
    }
    if (p && fromPartner !== p.seq - p.unsure.size) throw new Error(`client ${c.device} holds ${fromPartner} of the ${p.seq - p.unsure.size} records its partner had accepted`);
  }

  // Every user's full stream from the server, without a device id: each accepted record once.
  const byUser = new Map<string, Client[]>();
  for (const c of clients) byUser.set(c.user, [...(byUser.get(c.user) ?? []), c]);
  const expectedCount = new Map<string, { min: number; max: number }>();
  for (const [user, devices] of byUser) {
    const reader: Client = { ...devices[0]!, cursor: null, seen: new Map() };
    const ids = new Set<string>();
    for (;;) {
      const page = await pull(reader, null, false);
      if (!page) throw new Error(`the full pull of ${user} failed: ${samples.join(' | ')}`);
      for (const row of [...page.changes.captures.created, ...page.changes.captures.updated]) {
        const id = String(row['id']);
        if (ids.has(id)) throw new Error(`the full pull of ${user} returned ${id} twice`);
        ids.add(id);
        const owner = devices.find((d) => owns(d, id) !== undefined);
        const seq = owner && owns(owner, id);
        if (!owner || seq === undefined || mayHold(owner, seq) === 'no') throw new Error(`the server has ${id} for ${user}, which no device pushed`);
        if (row['raw_content'] !== note(seq)) throw new Error(`the server has ${id} with another value`);
      }
      reader.cursor = page.timestamp;
      if (!page.has_more) break;
    }
    const must = devices.reduce((n, d) => n + d.seq - d.unsure.size, 0);
    const may = devices.reduce((n, d) => n + d.unsure.size, 0);
    let held = 0;
    for (const d of devices) for (let s = 0; s < d.seq; s++) if (mayHold(d, s) === 'must' && ids.has(`${deviceUser(d)}-c${s}`)) held++;
    if (held !== must) throw new Error(`the server returned ${held} of the ${must} records ${user}'s devices had accepted`);
    if (ids.size > must + may) throw new Error(`the server returned ${ids.size} records for ${user}, more than pushed`);
    expectedCount.set(user, { min: must, max: must + may });
  }

  if (options.db) {
    const rows: Array<{ user_id: string; n: string | number }> = await options.db('captures').whereIn('user_id', users).groupBy('user_id').select('user_id').count({ n: '*' });
    const counted = new Map(rows.map((r) => [r.user_id, Number(r.n)]));
    for (const [user, { min, max }] of expectedCount) {
      const n = counted.get(user) ?? 0;
      if (n < min || n > max) throw new Error(`PostgreSQL has ${n} rows for ${user}; expected ${min === max ? min : `${min} to ${max}`}`);
    }
  }

  const all = Float64Array.from([...pushLatencies, ...pullLatencies]).sort();
  const p95 = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 95);
  return {
    users,
    ms,
    requests: all.length,
    errors,
    error_samples: samples,
    records_pushed: pushedRecords,
    records_pulled: pulledDuringLoad,
    latency: { p50: percentile(all, 50), p95: percentile(all, 95), p99: percentile(all, 99), max: percentile(all, 100) },
    push_p95: p95(pushLatencies),
    pull_p95: p95(pullLatencies),
    stale_socket_retries: staleSocketRetries - retriesBefore,
    cpu,
  };
}

/** The measurement fields of a load result, for a report line. */
export function loadLine(r: LoadResult): Record<string, unknown> {
  const s = r.ms / 1000;
  return {
    seconds: Number(s.toFixed(1)),
    requests: r.requests,
    requests_per_s: Math.round(r.requests / s),
    records_pushed: r.records_pushed,
    records_pulled: r.records_pulled,
    records_per_s: Math.round((r.records_pushed + r.records_pulled) / s),
    p50_ms: r.latency.p50,
    p95_ms: r.latency.p95,
    p99_ms: r.latency.p99,
    max_ms: r.latency.max,
    push_p95_ms: r.push_p95,
    pull_p95_ms: r.pull_p95,
    errors: r.errors,
    ...(r.stale_socket_retries ? { stale_socket_retries: r.stale_socket_retries } : {}),
    cpu_pct_of_one_core: r.cpu,
    ...(r.error_samples.length ? { error_samples: r.error_samples } : {}),
  };
}
