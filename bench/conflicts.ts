import { capture, checkPulled, note, push, rate } from './data';
import { elapsed, report, startBenchServer, type BenchServer } from './support';

/**
 * N conflicting updates in one push: a phone updates N captures that a laptop changed after the
 * phone's last pull. Time per record, and the answer must list exactly those N conflicts. One
 * untimed round of 200 first (the conflict path's code is otherwise cold in the timed push), then
 * ROUNDS timed rounds of N, each on a user of its own; the line gives their median.
 */

const N = 1000;
const ROUNDS = 3;

/** One round: set up N conflicting captures for `user`, then time the phone's push of them. */
async function round(server: BenchServer, user: string, n: number): Promise<{ ms: number; sample: unknown }> {
  const created = await push(server, user, { last_pulled_at: null, changes: { captures: { created: Array.from({ length: n }, (_, i) => capture(user, i)) } } }, 'phone');
  const update = (version: number) => Array.from({ length: n }, (_, i) => ({ id: capture(user, i).id, raw_content: note(i, version), _changed: 'raw_content' }));
  const laptop = await push(server, user, { last_pulled_at: created.timestamp, changes: { captures: { updated: update(1) } } }, 'laptop');
  if (laptop.conflicts.length) throw new Error(`the laptop's push had ${laptop.conflicts.length} conflicts`);

  const start = process.hrtime.bigint();
  const phone = await push(server, user, { last_pulled_at: created.timestamp, changes: { captures: { updated: update(2) } } }, 'phone');
  const ms = elapsed(start);

  if (phone.conflicts.length !== n) throw new Error(`the answer lists ${phone.conflicts.length} of ${n} conflicts`);
  const ids = new Set(phone.conflicts.map((c) => (c.table === 'captures' ? c.id : '')));
  for (let i = 0; i < n; i++) if (!ids.has(capture(user, i).id)) throw new Error(`no conflict listed for ${capture(user, i).id}`);
  for (const c of phone.conflicts) {
    if (c.type !== 'update_update' || !c.client_columns.includes('raw_content')) throw new Error(`conflict ${c.id} is not the phone's raw_content winning: ${JSON.stringify(c)}`);
  }
  // The phone's values won: every record is there with them (checked outside the timing).
  await checkPulled(server, user, n, 2);
  return { ms, sample: phone.conflicts[0] && { type: phone.conflicts[0].type, resolution: phone.conflicts[0].resolution } };
}

export async function benchConflicts(): Promise<void> {
  const server = await startBenchServer();
  const run = Date.now().toString(36);
  const users = [`conflicts-warm-${run}`];
  try {
    await round(server, users[0]!, 200);
    const rounds: Array<{ ms: number; sample: unknown }> = [];
    for (let r = 0; r < ROUNDS; r++) {
      users.push(`conflicts-${r}-${run}`);
      rounds.push(await round(server, users[users.length - 1]!, N));
    }
    const times = rounds.map((r) => r.ms).sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)]!;
    report({
      name: 'conflicts',
      database: server.database,
      records: N,
      rounds: ROUNDS,
      ms: Math.round(ms),
      records_per_s: rate(N, ms),
      ms_per_record: Number((ms / N).toFixed(3)),
      ms_per_record_min_max: [Number((times[0]! / N).toFixed(3)), Number((times[times.length - 1]! / N).toFixed(3))],
      target_ms_per_record: 0.1,
      target_met: ms / N < 0.1,
      sample: rounds[0]!.sample,
    });
  } finally {
    await server.forget(users);
    await server.close();
  }
}
