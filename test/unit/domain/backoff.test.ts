import { expect } from 'chai';
import { MAX_RETRY_DELAY_MS, retryDelayMs } from '../../../src/domain';

/** Retry delays (spec §5): Fibonacci seconds, then 55 s, never over five minutes. */
describe('retryDelayMs', () => {
  const table: Array<[number, number]> = [
    [1, 1_000],
    [2, 1_000],
    [3, 2_000],
    [4, 3_000],
    [5, 5_000],
    [6, 8_000],
    [7, 13_000],
    [8, 21_000],
    [9, 34_000],
    [10, 55_000],
    [11, 55_000],
    [12, 55_000],
    [100, 55_000],
    [Number.MAX_SAFE_INTEGER, 55_000],
  ];
  for (const [attempt, delay] of table) {
    it(`waits ${delay / 1000} s before retry ${attempt}`, () => {
      expect(retryDelayMs(attempt)).to.equal(delay);
    });
  }

  it('treats attempts below 1 as the first and fractional attempts as the one started', () => {
    expect([retryDelayMs(0), retryDelayMs(-5), retryDelayMs(3.9)]).to.deep.equal([1_000, 1_000, 2_000]);
  });

  it('never waits longer than the cap it is given', () => {
    expect(retryDelayMs(10, 20_000)).to.equal(20_000);
    expect(retryDelayMs(2, 20_000)).to.equal(1_000);
  });

  it('never waits longer than five minutes, whatever cap it is given', () => {
    expect(MAX_RETRY_DELAY_MS).to.equal(300_000);
    for (let attempt = 1; attempt <= 50; attempt++) expect(retryDelayMs(attempt, Infinity)).to.be.at.most(MAX_RETRY_DELAY_MS);
  });

  it('waits at least a second for any input', () => {
    for (const attempt of [Number.NaN, -Infinity, Infinity]) expect(retryDelayMs(attempt)).to.be.within(1_000, 55_000);
  });
});
