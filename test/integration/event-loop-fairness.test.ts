import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';

/**
 * A server shares one thread between its database work and everything else: accepting requests,
 * timers, other requests' I/O. A long chain of queries must let them run. PGlite answers queries
 * through promises alone (no I/O), so without a deliberate yield a busy request starved every
 * other one: under 200 clients, p95 was 9.8 s (docs/performance.md).
 * Bad input tried: a 300-query chain started before a 0 ms timer.
 */
describeEachDatabase('Database queries let the event loop turn', (ctx) => {
  it('a timer set before a chain of queries fires during the chain, not after it', async () => {
    let firedAfter = -1;
    let done = 0;
    setTimeout(() => (firedAfter = done), 0);
    await ctx.database.db.transaction(async (trx) => {
      for (let i = 0; i < 300; i++) {
        await trx.raw('SELECT 1');
        done++;
      }
    });
    expect(firedAfter, 'queries done when the timer fired').to.be.within(0, 299);
  });
});
