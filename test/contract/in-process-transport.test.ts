import { expect } from 'chai';
import { networkFailure, timeoutFailure } from '../../src/domain';
import { createInProcessServer } from '../fakes/in-process-transport';
import { runSyncTransportContract } from './sync-transport.contract';

runSyncTransportContract('InProcessTransport over PullChanges/PushChanges and MemoryChangeStore', () => {
  const server = createInProcessServer();
  return { connect: (userId, o = {}) => server.connect(userId, { deviceId: o.deviceId ?? null, schemaVersion: o.schemaVersion ?? 1 }) };
});

describe('InProcessTransport test hooks', () => {
  const body = (pushId: string) => ({ last_pulled_at: null, push_id: pushId, changes: { ideas: { created: [{ id: 'i1', thought_id: null, text: 'x', created_at: 1 }], updated: [], deleted: [] } } });

  it('fails the next calls of one kind with the injected failure, without reaching the server', async () => {
    const server = createInProcessServer();
    const t = server.connect('u1', { deviceId: 'd1' });
    t.failNext(1, networkFailure('cable cut'), { kind: 'push' });
    expect((await t.pull({ lastPulledAt: null, tables: ['ideas'] })).isOk()).to.equal(true);
    expect((await t.push(body('p1')))._unsafeUnwrapErr()).to.deep.equal(networkFailure('cable cut'));
    expect(server.store.snapshot('u1').rows).to.deep.equal([]);
    expect((await t.push(body('p1'))).isOk()).to.equal(true);
    expect(server.store.snapshot('u1').rows.map((r) => r.values['id'])).to.deep.equal(['i1']);
    expect(t.calls.map((c) => c.kind)).to.deep.equal(['pull', 'push', 'push']);
  });

  it('can let the server apply a call and lose its answer', async () => {
    const server = createInProcessServer();
    const t = server.connect('u1', { deviceId: 'd1' });
    t.failNext(1, timeoutFailure('no answer'), { afterServer: true });
    expect((await t.push(body('p1')))._unsafeUnwrapErr().kind).to.equal('TIMEOUT');
    expect(server.store.snapshot('u1').rows.map((r) => r.values['id'])).to.deep.equal(['i1']);
  });

  it('holds calls at a gate until released, counting how many were under way at once', async () => {
    const t = createInProcessServer().connect('u1');
    const release = t.hold();
    const a = t.pull({ lastPulledAt: null, tables: ['ideas'] });
    const b = t.pull({ lastPulledAt: null, tables: ['todos'] });
    await new Promise((r) => setImmediate(r));
    expect([t.waiting, t.maxInFlight]).to.deep.equal([2, 2]);
    release();
    expect([(await a).isOk(), (await b).isOk(), t.waiting]).to.deep.equal([true, true, 0]);
  });
});
