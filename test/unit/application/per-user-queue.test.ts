import { expect } from 'chai';
import { PerKeyQueue } from '../../../src/application/per-key-queue';

/** Issue 20, item 6: one push per user in flight per process; the others wait (boundedly) without a connection. */
describe('PerKeyQueue', () => {
  const deferred = () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  };

  it('runs one task per key at a time, in arrival order, lets other keys run, and refuses past the queue bound', async () => {
    const q = new PerKeyQueue(2);
    const order: string[] = [];
    const gates = [deferred(), deferred(), deferred()];
    const task = (name: string, gate: Promise<void>) => async () => {
      order.push(`start ${name}`);
      await gate;
      order.push(`end ${name}`);
      return name;
    };
    const a1 = q.run('a', task('a1', gates[0]!.promise));
    const a2 = q.run('a', task('a2', gates[1]!.promise));
    const a3 = q.run('a', task('a3', gates[2]!.promise));
    const a4 = q.run('a', task('a4', Promise.resolve()));
    expect(await a4, 'the fourth of one key: one running, two waiting').to.equal(null);
    expect(await q.run('b', task('b1', Promise.resolve())), 'another key is not held up').to.deep.equal({ value: 'b1' });
    expect(order).to.deep.equal(['start a1', 'start b1', 'end b1']);
    gates[0]!.resolve();
    gates[1]!.resolve();
    gates[2]!.resolve();
    expect(await Promise.all([a1, a2, a3])).to.deep.equal([{ value: 'a1' }, { value: 'a2' }, { value: 'a3' }]);
    expect(order.filter((o) => o.includes(' a'))).to.deep.equal(['start a1', 'end a1', 'start a2', 'end a2', 'start a3', 'end a3']);
    expect(q.size(), 'no key is kept once idle').to.equal(0);
  });

  it('a task that throws frees its key for the next', async () => {
    const q = new PerKeyQueue(1);
    const failing = q.run('a', async () => {
      throw new Error('boom');
    });
    const next = q.run('a', async () => 'ok');
    await failing.then(
      () => expect.fail('should reject'),
      (e: Error) => expect(e.message).to.equal('boom'),
    );
    expect(await next).to.deep.equal({ value: 'ok' });
  });
});
