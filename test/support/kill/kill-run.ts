import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { Rng } from '../convergence/rng';
import { startTestServer, storedRows, type TestServer } from '../server';
import { DeviceGone, DeviceProcess } from './device';

/**
 * Seeded runs in which every device is a process of its own, killed with SIGKILL at random
 * moments: during a sync (a timer started with it, so the kill lands anywhere in its pulls,
 * pushes, SQLite transactions and checkpoint writes), during a local write, or at rest. A killed
 * device is started again on the same files. Each device writes rows of its own (one writer per
 * row), so the check of what survives is exact:
 * 1. `integrity_check` is ok at every start of every device;
 * 2. after the kills stop and every device has synced, every device holds exactly its user's
 *    active rows on the server, value for value, with nothing pending;
 * 3. no confirmed local write is lost: a write the device answered (its SQLite transaction had
 *    committed) is on the server unless a later write of the same column replaced it; a write
 *    cut by a kill may or may not be there.
 * Conflicts between devices are left to the in-process convergence runs (test/support/convergence).
 */

export interface KillRunResult {
  readonly seed: number;
  readonly problems: string[];
  readonly commands: string[];
  readonly kills: { sync: number; write: number; idle: number };
  readonly starts: number;
  readonly writes: number;
  readonly syncs: { ok: number; failed: number; cut: number };
  readonly ms: number;
}

/** The column each table's writes change (unique values, so a value names its write). */
const VALUE_COLUMN: Record<string, string> = { captures: 'raw_content', todos: 'description', thoughts: 'summary', ideas: 'text', projects: 'name' };
const REQUIRED: Record<string, Record<string, unknown>> = { captures: { type: 'text' }, todos: {}, thoughts: { capture_id: 'c' }, ideas: {}, projects: {} };

interface RowTrack {
  readonly table: string;
  readonly id: string;
  readonly device: number;
  /** The latest confirmed state: a value, a delete, or nothing yet (a create not confirmed). */
  confirmed: { deleted: boolean; value: string } | null;
  /** States sent after it whose answer a kill cut off: each may have committed. */
  maybe: Array<{ deleted: boolean; value: string }>;
}

interface Dev {
  readonly index: number;
  readonly user: string;
  proc: DeviceProcess | null;
  rows: number;
}

export async function runKillConvergence(db: Knex, options: { seed: number; commands?: number }): Promise<KillRunResult> {
  const started = Date.now();
  const rng = new Rng(options.seed);
  const problems: string[] = [];
  const log: string[] = [];
  const kills = { sync: 0, write: 0, idle: 0 };
  const syncs = { ok: 0, failed: 0, cut: 0 };
  let starts = 0;
  let writes = 0;
  const dir = mkdtempSync(join(tmpdir(), `sync-kill-${options.seed}-`));
  const run = started.toString(36);
  const userCount = rng.pick([1, 1, 2]);
  const users = Array.from({ length: userCount }, (_, u) => `k${options.seed}-u${u}-${run}`);
  const devices: Dev[] = Array.from({ length: rng.int(2, 3) }, (_, i) => ({ index: i, user: users[i % userCount]!, proc: null, rows: 0 }));
  const tables = rng.chance(0.5) ? [rng.pick(Object.keys(VALUE_COLUMN))] : ['captures', 'ideas', 'todos'];
  const batchSize = rng.pick([2, 5, 100]);
  const pullLimit = rng.pick([3, 10, 500]);
  const rows: RowTrack[] = [];
  let server: TestServer | undefined;
  log.push(`users=${userCount} devices=${devices.length} tables=${tables.join(',')} batch=${batchSize} pullLimit=${pullLimit}`);

  const startDevice = async (d: Dev) => {
    d.proc = await DeviceProcess.start({ serverUrl: server!.url, token: server!.token(d.user), dir, name: `d${d.index}.db`, batchSize, pullLimit });
    starts++;
    if (d.proc.integrity !== 'ok') problems.push(`d${d.index}: integrity_check at start #${starts}: ${d.proc.integrity}`);
  };
  const kill = async (d: Dev, why: keyof typeof kills) => {
    if (!d.proc?.alive) return;
    kills[why]++;
    await d.proc.kill();
  };
  /** Kills `d` after `ms` unless `done` settles first. */
  const killAfter = (d: Dev, ms: number, why: keyof typeof kills, done: Promise<unknown>) => {
    let settled = false;
    void done.finally(() => (settled = true)).catch(() => undefined);
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        if (settled) return resolve();
        log.push(`  kill d${d.index} (${why}) after ${ms} ms`);
        void kill(d, why).then(resolve);
      }, ms),
    );
  };
  const proc = async (d: Dev): Promise<DeviceProcess> => {
    if (!d.proc?.alive) {
      log.push(`start d${d.index}`);
      await startDevice(d);
    }
    return d.proc!;
  };

  /** One local write of device `d`: a create, an update or a delete of one of its own rows. */
  const write = async (d: Dev) => {
    const own = rows.filter((r) => r.device === d.index && !(r.confirmed?.deleted && r.maybe.length === 0));
    const value = `s${options.seed}d${d.index}w${++writes}`;
    let track: RowTrack;
    let request: Parameters<DeviceProcess['request']>[0];
    let state: { deleted: boolean; value: string };
    const p = await proc(d);
    if (own.length < 2 || rng.chance(0.3)) {
      const table = rng.pick(tables);
      track = { table, id: `s${options.seed}-d${d.index}-r${d.rows++}`, device: d.index, confirmed: null, maybe: [] };
      rows.push(track);
      request = { op: 'create', table, values: { id: track.id, ...REQUIRED[table], [VALUE_COLUMN[table]!]: value } };
      state = { deleted: false, value };
    } else {
      track = rng.pick(own);
      const last = track.maybe.at(-1) ?? track.confirmed;
      if (last?.deleted) return; // a delete is final: nothing more to do to this row
      if (rng.chance(0.15)) {
        request = { op: 'delete', table: track.table, id: track.id };
        state = { deleted: true, value: last?.value ?? '' };
      } else {
        request = { op: 'update', table: track.table, id: track.id, values: { [VALUE_COLUMN[track.table]!]: value } };
        state = { deleted: false, value };
      }
    }
    log.push(`d${d.index} ${request.op} ${track.table}/${track.id}${request.op === 'delete' ? '' : ` = ${value}`}`);
    const done = p.request(request);
    const killing = rng.chance(0.1) ? killAfter(d, rng.int(0, 4), 'write', done) : null;
    try {
      await done;
      track.confirmed = state;
      track.maybe = [];
    } catch (e) {
      if (!(e instanceof DeviceGone)) {
        // A local write refused (an update racing a pulled delete of a row the device thought it had): nothing changed.
        log.push(`  refused: ${(e as Error).message}`);
      } else track.maybe.push(state);
    }
    await killing;
  };

  const sync = async (d: Dev, killable: boolean): Promise<boolean> => {
    const p = await proc(d);
    const done = p.request<{ ok: boolean; error?: { kind: string; message: string } }>({ op: 'sync' });
    const killing = killable && rng.chance(0.5) ? killAfter(d, rng.int(0, 150), 'sync', done) : null;
    try {
      const r = await done;
      if (r.ok) syncs.ok++;
      else {
        syncs.failed++;
        log.push(`  d${d.index} sync failed: ${r.error?.kind} ${r.error?.message}`);
      }
      return r.ok;
    } catch (e) {
      if (!(e instanceof DeviceGone)) throw e;
      syncs.cut++;
      return false;
    } finally {
      await killing;
    }
  };

  try {
    server = await startTestServer(db);
    const n = options.commands ?? rng.int(12, 24);
    for (let i = 0; i < n; i++) {
      const d = rng.pick(devices);
      const roll = rng.next();
      if (roll < 0.5) await write(d);
      else if (roll < 0.9) {
        log.push(`d${d.index} sync`);
        await sync(d, true);
      } else if (d.proc?.alive) {
        log.push(`kill d${d.index} (idle)`);
        await kill(d, 'idle');
      }
    }

    // Heal: no more kills; every device syncs until it succeeds, twice round, so each has what the others pushed.
    for (let round = 0; round < 2; round++) {
      for (const d of devices) {
        let ok = false;
        for (let attempt = 0; attempt < 10 && !ok; attempt++) ok = await sync(d, false);
        if (!ok) problems.push(`d${d.index}: no sync succeeded in round ${round}`);
      }
    }

    // (1) once more: close every device cleanly and start it again on its files.
    for (const d of devices) {
      await d.proc?.close();
      await startDevice(d);
    }
    // (2) every device equals the server, nothing pending.
    for (const d of devices) {
      const pending = await d.proc!.request<number>({ op: 'pending' });
      if (pending !== 0) problems.push(`d${d.index}: ${pending} changes still pending`);
      for (const table of tables) {
        const column = VALUE_COLUMN[table]!;
        const local = (await d.proc!.request<Array<Record<string, unknown>>>({ op: 'rows', table })).map((r) => `${r['id']}=${r[column]}`);
        const remote = (await storedRows(db, table, d.user)).filter((r) => r._status === 'active').map((r) => `${r.id}=${r[column]}`);
        if (JSON.stringify(local) !== JSON.stringify(remote)) problems.push(`d${d.index} ${table}: device ${JSON.stringify(local)} but server ${JSON.stringify(remote)}`);
      }
    }
    // (3) no confirmed write lost.
    for (const t of rows) {
      const user = devices[t.device]!.user;
      const [row] = (await storedRows(db, t.table, user)).filter((r) => r.id === t.id);
      const held = !row || row._status !== 'active' ? { deleted: true } : { deleted: false, value: String(row[VALUE_COLUMN[t.table]!]) };
      const allowed = [...(t.confirmed ? [t.confirmed] : [{ deleted: true, value: '' }]), ...t.maybe];
      const ok = allowed.some((a) => (a.deleted ? held.deleted : !held.deleted && held.value === a.value));
      if (!ok) problems.push(`${t.table}/${t.id}: the server holds ${JSON.stringify(held)}, the device confirmed ${JSON.stringify(t.confirmed)} (then maybe ${JSON.stringify(t.maybe)})`);
    }
  } catch (e) {
    problems.push(`run failed: ${e instanceof Error ? e.stack : String(e)}`);
  } finally {
    for (const d of devices) await d.proc?.kill().catch(() => undefined);
    await server?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  return { seed: options.seed, problems, commands: log, kills, starts, writes, syncs, ms: Date.now() - started };
}
