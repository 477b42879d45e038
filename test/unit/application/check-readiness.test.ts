import { expect } from 'chai';
import { errAsync, okAsync } from 'neverthrow';
import { CheckReadiness } from '../../../src/application/check-readiness';
import type { ChangeStore } from '../../../src/application/ports';
import { syncError } from '../../../src/domain';

/** Issue 20, item 6: /readyz made one database round trip per call, so probes could load the pool. */
describe('CheckReadiness', () => {
  function fixture(fail = false) {
    let now = 1_000_000;
    const calls = { pings: 0 };
    const resolvers: Array<() => void> = [];
    const store = {
      ping: () => {
        calls.pings++;
        return fail ? errAsync(syncError('UNAVAILABLE', 'down')) : okAsync(undefined);
      },
    } as unknown as ChangeStore;
    const check = new CheckReadiness(store, { now: () => now });
    return { check, calls, resolvers, advance: (ms: number) => (now += ms) };
  }

  it('asks the database at most once per second, however many probes come (in parallel or one after another)', async () => {
    const f = fixture();
    const answers = await Promise.all(Array.from({ length: 200 }, () => f.check.execute()));
    for (let i = 0; i < 50; i++) answers.push(await f.check.execute());
    expect(answers.every((a) => a.isOk())).to.equal(true);
    expect(f.calls.pings).to.equal(1);
    f.advance(999);
    await f.check.execute();
    expect(f.calls.pings).to.equal(1);
    f.advance(1);
    await f.check.execute();
    expect(f.calls.pings).to.equal(2);
  });

  it('keeps a failure for the second too, then asks again', async () => {
    const f = fixture(true);
    expect((await f.check.execute()).isErr()).to.equal(true);
    expect((await f.check.execute()).isErr()).to.equal(true);
    expect(f.calls.pings).to.equal(1);
    f.advance(1000);
    await f.check.execute();
    expect(f.calls.pings).to.equal(2);
  });
});
