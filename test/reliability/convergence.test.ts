import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { runConvergence, formatFailure, type RunResult } from '../support/convergence/model';
import { describeEachDatabase } from '../support/databases';

/**
 * Seeded model-based convergence runs with faults, crash points and clock skew
 * (test/support/convergence/model.ts, docs/testing.md). The regression seeds run first, then
 * CONVERGENCE_RUNS fresh seeds per database (default 120 on the first database, 30 on the next),
 * from CONVERGENCE_BASE_SEED (default 1) so CI is repeatable. CONVERGENCE_SEED=n runs that one seed.
 */

const regressions = (JSON.parse(readFileSync(new URL('./regressions.json', import.meta.url), 'utf8')) as { seeds: Array<{ seed: number; commands?: number; note?: string }> }).seeds;
const only = process.env['CONVERGENCE_SEED'];
const base = Number(process.env['CONVERGENCE_BASE_SEED'] ?? 1);
const runsFor = (db: string) => Number(process.env['CONVERGENCE_RUNS'] ?? (db === 'pglite' && process.env['DATABASE_URL'] ? 30 : 120));

function expectConverged(r: RunResult): void {
  if (!r.ok) console.error(formatFailure(r));
  expect(r.problems, `seed ${r.seed}`).to.deep.equal([]);
  // A run that wrote nothing or never synced proves nothing.
  expect(r.syncs, `seed ${r.seed}: syncs`).to.be.greaterThan(0);
}

describeEachDatabase('Convergence under faults, crashes and clock skew', (ctx, name) => {
  const totals = { runs: 0, writes: 0, acknowledged: 0, syncs: 0, ms: 0, fetch: {} as Record<string, number>, crashes: {} as Record<string, number> };
  const tally = (r: RunResult) => {
    totals.runs++;
    totals.writes += r.writes;
    totals.acknowledged += r.acknowledged;
    totals.syncs += r.syncs;
    totals.ms += r.ms;
    for (const [k, v] of Object.entries(r.faults.fetch)) totals.fetch[k] = (totals.fetch[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.faults.crashes)) totals.crashes[k] = (totals.crashes[k] ?? 0) + v;
  };
  after(() => {
    if (totals.runs) console.log(`    convergence [${name}]: ${totals.runs} runs, ${totals.writes} local writes, ${totals.acknowledged} acknowledged column writes, ${totals.syncs} syncs in ${(totals.ms / 1000).toFixed(1)} s; faults ${JSON.stringify(totals.fetch)}; crashes ${JSON.stringify(totals.crashes)}`);
  });

  if (only) {
    it(`seed ${only}`, async function () {
      this.timeout(120_000);
      const r = await runConvergence(ctx.database.db, { seed: Number(only) });
      console.log(r.commands.join('\n'));
      expectConverged(r);
    });
    return;
  }

  for (const reg of regressions) {
    it(`regression seed ${reg.seed}${reg.note ? ` (${reg.note})` : ''}`, async function () {
      this.timeout(120_000);
      const r = await runConvergence(ctx.database.db, { seed: reg.seed, ...(reg.commands ? { commands: reg.commands } : {}) });
      tally(r);
      expectConverged(r);
    });
  }

  const runs = runsFor(name);
  for (let i = 0; i < runs; i++) {
    const seed = base + i;
    it(`seed ${seed}`, async function () {
      this.timeout(120_000);
      const r = await runConvergence(ctx.database.db, { seed });
      tally(r);
      expectConverged(r);
    });
  }

  it('a run without faults converges too, and the checks see every acknowledged write', async () => {
    const r = await runConvergence(ctx.database.db, { seed: 424242, faults: false, commands: 40 });
    expectConverged(r);
    expect(r.acknowledged).to.be.greaterThan(0);
    expect(r.faults.fetch).to.deep.equal({});
  });
});
