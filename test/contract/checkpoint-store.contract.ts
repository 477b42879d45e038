import { expect } from 'chai';
import type { CheckpointStore } from '../../mobile/src/ports';

/**
 * The CheckpointStore port's contract (mobile/src/ports/checkpoint-store.ts), run against every
 * implementation: cursors and the device id outlive the store instance (an app restart), an
 * unknown table reads null, setting null forgets a cursor, and tables do not share cursors; the
 * same for the unanswered push attempt of each table.
 */

export interface CheckpointStoreUnderTest {
  /** A store over storage that starts empty. */
  readonly store: CheckpointStore;
  /** Another store over the same storage, as after an app restart. */
  reopen(): CheckpointStore;
}

export function runCheckpointStoreContract(name: string, make: () => Promise<CheckpointStoreUnderTest>): void {
  describe(`CheckpointStore contract: ${name}`, () => {
    let subject: CheckpointStoreUnderTest;
    let store: CheckpointStore;
    beforeEach(async () => {
      subject = await make();
      store = subject.store;
    });

    it('reads null for a table that was never pulled', async () => {
      expect(await store.getLastPulledAt('captures')).to.equal(null);
      expect(await store.getLastPulledAt('no_such_table')).to.equal(null);
    });

    it('reads back a cursor once set resolves, from the same store and from a new one over the same storage', async () => {
      await store.setLastPulledAt('captures', 1_736_760_000_123);
      expect(await store.getLastPulledAt('captures')).to.equal(1_736_760_000_123);
      expect(await subject.reopen().getLastPulledAt('captures')).to.equal(1_736_760_000_123);
    });

    it('keeps one cursor per table and replaces it on a later set', async () => {
      await store.setLastPulledAt('captures', 100);
      await store.setLastPulledAt('todos', 200);
      await store.setLastPulledAt('captures', 300);
      const restarted = subject.reopen();
      expect([await restarted.getLastPulledAt('captures'), await restarted.getLastPulledAt('todos'), await restarted.getLastPulledAt('ideas')]).to.deep.equal([300, 200, null]);
    });

    it('forgets a cursor set to null, for this store and after a restart, leaving other tables alone', async () => {
      await store.setLastPulledAt('captures', 100);
      await store.setLastPulledAt('todos', 200);
      await store.setLastPulledAt('captures', null);
      expect(await store.getLastPulledAt('captures')).to.equal(null);
      expect(await subject.reopen().getLastPulledAt('captures')).to.equal(null);
      expect(await subject.reopen().getLastPulledAt('todos')).to.equal(200);
    });

    it('accepts null for a table that has no cursor', async () => {
      await store.setLastPulledAt('ideas', null);
      expect(await store.getLastPulledAt('ideas')).to.equal(null);
    });

    it('has no device id at first, then keeps the one set across a restart', async () => {
      expect(await store.getDeviceId()).to.equal(null);
      await store.setDeviceId('device-7f3a');
      expect(await store.getDeviceId()).to.equal('device-7f3a');
      expect(await subject.reopen().getDeviceId()).to.equal('device-7f3a');
    });

    it('keeps the device id and the cursors apart', async () => {
      await store.setDeviceId('d1');
      await store.setLastPulledAt('captures', 5);
      await store.setLastPulledAt('captures', null);
      expect(await subject.reopen().getDeviceId()).to.equal('d1');
    });

    it('keeps an unanswered push attempt per table across a restart, and forgets it when set to null', async () => {
      expect(await store.getPushAttempt('captures')).to.equal(null);
      const attempt = { key: 'k1:120', pushId: 'dev-1-abc', lastPulledAt: 1_736_760_000_123 };
      await store.setPushAttempt('captures', attempt);
      await store.setPushAttempt('todos', { key: 'k2:80', pushId: 'dev-1-def', lastPulledAt: null });
      const restarted = subject.reopen();
      expect(await restarted.getPushAttempt('captures')).to.deep.equal(attempt);
      expect(await restarted.getPushAttempt('todos')).to.deep.equal({ key: 'k2:80', pushId: 'dev-1-def', lastPulledAt: null });
      expect(await restarted.getPushAttempt('ideas')).to.equal(null);
      await restarted.setPushAttempt('captures', null);
      expect(await subject.reopen().getPushAttempt('captures')).to.equal(null);
      expect(await subject.reopen().getPushAttempt('todos')).to.not.equal(null);
    });

    it('keeps one push attempt per slot of a table, apart from each other and from other tables, across a restart', async () => {
      const a0 = { key: 'k0:10', pushId: 'dev-1-s0', lastPulledAt: 5 };
      const a1 = { key: 'k1:10', pushId: 'dev-1-s1', lastPulledAt: 5 };
      await store.setPushAttempt('captures', a0, 0);
      await store.setPushAttempt('captures', a1, 1);
      await store.setPushAttempt('todos', { key: 't', pushId: 'dev-1-t', lastPulledAt: null }, 1);
      const restarted = subject.reopen();
      expect(await restarted.getPushAttempt('captures')).to.deep.equal(a0, 'slot 0 is the default slot');
      expect(await restarted.getPushAttempt('captures', 0)).to.deep.equal(a0);
      expect(await restarted.getPushAttempt('captures', 1)).to.deep.equal(a1);
      expect(await restarted.getPushAttempt('captures', 2)).to.equal(null);
      expect(await restarted.getPushAttempt('todos', 0)).to.equal(null);
      await restarted.setPushAttempt('captures', null, 1);
      const again = subject.reopen();
      expect(await again.getPushAttempt('captures', 1)).to.equal(null);
      expect(await again.getPushAttempt('captures', 0)).to.deep.equal(a0);
      expect(await again.getPushAttempt('todos', 1)).to.deep.equal({ key: 't', pushId: 'dev-1-t', lastPulledAt: null });
    });

    it('keeps push attempts apart from the cursors', async () => {
      await store.setLastPulledAt('captures', 7);
      await store.setPushAttempt('captures', { key: 'k', pushId: 'p', lastPulledAt: 7 });
      await store.setLastPulledAt('captures', null);
      expect(await subject.reopen().getPushAttempt('captures')).to.deep.equal({ key: 'k', pushId: 'p', lastPulledAt: 7 });
    });

    it('keeps the database id across a restart, apart from the device id, and forgets either when set to null', async () => {
      expect(await store.getDatabaseId()).to.equal(null);
      await store.setDatabaseId('db-1');
      await store.setDeviceId('dev-1');
      expect(await subject.reopen().getDatabaseId()).to.equal('db-1');
      await store.setDeviceId(null);
      expect([await subject.reopen().getDeviceId(), await subject.reopen().getDatabaseId()]).to.deep.equal([null, 'db-1']);
      await store.setDatabaseId(null);
      expect(await subject.reopen().getDatabaseId()).to.equal(null);
    });

    it('keeps scopes apart: from each other and from the unscoped store, across a restart (bad input: an empty scope name is refused)', async () => {
      const alice = store.scope('alice');
      const bob = store.scope('bob');
      // Names that a careless key scheme would mix up with each other or with the unscoped keys.
      const tricky = store.scope('alice@x');
      await store.setLastPulledAt('captures', 1);
      await alice.setLastPulledAt('captures', 2);
      await alice.setDeviceId('dev-alice');
      await alice.setDatabaseId('db-alice');
      await alice.setPushAttempt('todos', { key: 'ka', pushId: 'pa', lastPulledAt: 2 }, 1);
      await bob.setDeviceId('dev-bob');
      const restarted = subject.reopen();
      expect(await restarted.getLastPulledAt('captures')).to.equal(1);
      expect(await restarted.getDeviceId()).to.equal(null);
      expect(await restarted.scope('alice').getLastPulledAt('captures')).to.equal(2);
      expect(await restarted.scope('alice').getDeviceId()).to.equal('dev-alice');
      expect(await restarted.scope('alice').getDatabaseId()).to.equal('db-alice');
      expect(await restarted.scope('alice').getPushAttempt('todos', 1)).to.deep.equal({ key: 'ka', pushId: 'pa', lastPulledAt: 2 });
      expect(await restarted.scope('bob').getLastPulledAt('captures')).to.equal(null);
      expect(await restarted.scope('bob').getDeviceId()).to.equal('dev-bob');
      expect(await restarted.scope('bob').getPushAttempt('todos', 1)).to.equal(null);
      expect([await tricky.getDeviceId(), await tricky.getLastPulledAt('captures'), await tricky.getDatabaseId()]).to.deep.equal([null, null, null]);
      expect(() => store.scope('')).to.throw(TypeError);
    });
  });
}
