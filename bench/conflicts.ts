import { capture, checkPulled, note, push, rate } from './data';
import { elapsed, report, startBenchServer } from './support';

/**
 * N conflicting updates in one push: a phone updates N captures that a laptop changed after the
 * phone's last pull. Time per record, and the answer must list exactly those N conflicts.
 */

const N = 1000;

export async function benchConflicts(): Promise<void> {
  const server = await startBenchServer();
  const user = `conflicts-${Date.now().toString(36)}`;
  try {
    const created = await push(server, user, { last_pulled_at: null, changes: { captures: { created: Array.from({ length: N }, (_, i) => capture(user, i)) } } }, 'phone');
    const update = (version: number) => Array.from({ length: N }, (_, i) => ({ id: capture(user, i).id, raw_content: note(i, version), _changed: 'raw_content' }));
    const laptop = await push(server, user, { last_pulled_at: created.timestamp, changes: { captures: { updated: update(1) } } }, 'laptop');
    if (laptop.conflicts.length) throw new Error(`the laptop's push had ${laptop.conflicts.length} conflicts`);

    const start = process.hrtime.bigint();
    const phone = await push(server, user, { last_pulled_at: created.timestamp, changes: { captures: { updated: update(2) } } }, 'phone');
    const ms = elapsed(start);

    if (phone.conflicts.length !== N) throw new Error(`the answer lists ${phone.conflicts.length} of ${N} conflicts`);
    const ids = new Set(phone.conflicts.map((c) => (c.table === 'captures' ? c.id : '')));
    for (let i = 0; i < N; i++) if (!ids.has(capture(user, i).id)) throw new Error(`no conflict listed for ${capture(user, i).id}`);
    for (const c of phone.conflicts) {
      if (c.type !== 'update_update' || !c.client_columns.includes('raw_content')) throw new Error(`conflict ${c.id} is not the phone's raw_content winning: ${JSON.stringify(c)}`);
    }
    // The phone's values won: every record is there with them (checked outside the timing).
    await checkPulled(server, user, N, 2);
    report({
      name: 'conflicts',
      database: server.database,
      records: N,
      ms: Math.round(ms),
      records_per_s: rate(N, ms),
      ms_per_record: Number((ms / N).toFixed(3)),
      sample: phone.conflicts[0] && { type: phone.conflicts[0].type, resolution: phone.conflicts[0].resolution },
    });
  } finally {
    await server.forget([user]);
    await server.close();
  }
}
