import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { describeEachDatabase } from '../support/databases';
import { runKillConvergence, type KillRunResult } from '../support/kill/kill-run';

/**
 * Devices killed for real (test/support/kill/kill-run.ts, docs/testing.md): each device is a
 * process of its own, killed with SIGKILL at random moments and started again on its files.
 * The regression seeds run first, then KILL_RUNS fresh seeds per database (default 50 on the
 * first database, 10 on the next) from KILL_BASE_SEED (default 1); KILL_SEED=n runs that one seed.
 */

const regressions = (JSON.parse(readFileSync(new URL('./kill-regressions.json', import.meta.url), 'utf8')) as { seeds: Array<{ seed: number; note?: string }> }).seeds;
const only = process.env['KILL_SEED'];
const base = Number(process.env['KILL_BASE_SEED'] ?? 1);
const runsFor = (db: string) => Number(process.env['KILL_RUNS'] ?? (db === 'pglite' && process.env['DATABASE_URL'] ? 10 : 50));

function expectSound(r: KillRunResult): void {
  if (r.problems.length) console.error(`seed ${r.seed}:\n  ${r.problems.join('\n  ')}\n${r.commands.join('\n')}`);
  expect(r.problems, `seed ${r.seed}`).to.deep.equal([]);
}

describeEachDatabase('Devices killed with SIGKILL and restarted', (ctx, name) => {
  const totals = { runs: 0, kills: 0, starts: 0, writes: 0, syncs: 0, cut: 0, ms: 0 };
  after(() => {
    if (totals.runs) console.log(`    device kills [${name}]: ${totals.runs} runs, ${totals.kills} kills, ${totals.starts} process starts, ${totals.writes} local writes, ${totals.syncs} syncs (${totals.cut} cut by a kill) in ${(totals.ms / 1000).toFixed(1)} s`);
  });
  const tally = (r: KillRunResult) => {
    totals.runs++;
    totals.kills += r.kills.sync + r.kills.write + r.kills.idle;
    totals.starts += r.starts;
    totals.writes += r.writes;
    totals.syncs += r.syncs.ok + r.syncs.failed + r.syncs.cut;
    totals.cut += r.syncs.cut;
    totals.ms += r.ms;
  };
  const seeds = only ? [{ seed: Number(only) }] : [...regressions, ...Array.from({ length: runsFor(name) }, (_, i) => ({ seed: base + i }))];
  for (const s of seeds) {
    it(`seed ${s.seed}${'note' in s && s.note ? ` (${s.note})` : ''}`, async function () {
      this.timeout(120_000);
      const r = await runKillConvergence(ctx.database.db, { seed: s.seed });
      tally(r);
      expectSound(r);
    });
  }

  it('kills land during syncs, local writes and at rest over the runs', function () {
    if (only || totals.runs < 20) this.skip(); // one seed proves nothing about where kills land
    expect(totals.kills).to.be.greaterThan(totals.runs);
    expect(totals.cut, 'syncs cut by a kill').to.be.greaterThan(0);
  });
});
