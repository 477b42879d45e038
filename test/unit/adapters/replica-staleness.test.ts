import { expect } from 'chai';
import { stalenessMs } from '../../../src/adapters/postgres/read-replicas';

/**
 * How stale a hot standby is, from the primary's WAL samples (src/adapters/postgres/read-replicas.ts):
 * the age of the newest sample the standby has replayed past.
 */
describe('read replica staleness from the primary WAL samples', () => {
  const samples = [
    { atMs: 1000, lsn: 100n },
    { atMs: 2000, lsn: 250n },
    { atMs: 3000, lsn: 250n },
    { atMs: 4000, lsn: 400n },
  ];

  it('a standby at or past the newest sample is as fresh as that sample', () => {
    expect(stalenessMs(samples, 400n, 4010)).to.equal(10);
    expect(stalenessMs(samples, 900n, 4000)).to.equal(0);
  });

  it('an idle primary (no new WAL between samples) leaves a caught-up standby fresh', () => {
    expect(stalenessMs(samples, 250n, 3500)).to.equal(500);
  });

  it('a standby between samples is as old as the newest one it has passed', () => {
    expect(stalenessMs(samples, 399n, 5000)).to.equal(2000);
    expect(stalenessMs(samples, 100n, 5000)).to.equal(4000);
  });

  it('below every sample kept, or with no sample: unknown, so never within a bound', () => {
    expect(stalenessMs(samples, 99n, 4000)).to.equal(Infinity);
    expect(stalenessMs([], 1000n, 4000)).to.equal(Infinity);
  });
});
