import { expect } from 'chai';
import { ReplicaRouter, stalenessMs, type ReplicaProbes } from '../../../src/adapters/postgres/read-replicas';

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

/**
 * The router's judgement of each standby, with the database probes as plain functions the test
 * sets (what the primary has flushed, where each standby is) and the clock in the test's hand.
 * The same router on real replication: test/integration/read-replicas.test.ts.
 */
describe('read replica router: which database a pull reads', () => {
  const silent = { warn: () => undefined, info: () => undefined };

  function setup(names: string[] = ['a', 'b'], maxLagMs = 1000) {
    const clock = { now: 10_000 };
    const primary: { lsn: bigint; down: boolean } = { lsn: 100n, down: false };
    const standbys = new Map(names.map((n) => [n, { inRecovery: true, replayed: 100n as bigint | null, down: false }]));
    const probes: ReplicaProbes<string> = {
      primaryLsn: async () => {
        if (primary.down) throw new Error('connect ECONNREFUSED');
        return primary.lsn;
      },
      standby: async (name) => {
        const s = standbys.get(name)!;
        if (s.down) throw new Error('connect ECONNREFUSED');
        return { inRecovery: s.inRecovery, replayed: s.replayed };
      },
      close: async () => undefined,
    };
    const router = new ReplicaRouter(probes, names.map((name) => ({ name, db: name })), { maxLagMs }, silent, () => clock.now);
    const later = async (ms: number) => {
      clock.now += ms;
      await router.check();
    };
    const picks = (n: number) => Array.from({ length: n }, () => router.pick()?.name ?? 'primary');
    return { router, primary, standbys, later, picks, clock };
  }

  it('no standby before a first check; caught-up standbys then serve in turn', async () => {
    const { router, picks } = setup();
    expect(picks(2)).to.deep.equal(['primary', 'primary']);
    await router.check();
    expect(picks(4)).to.deep.equal(['a', 'b', 'a', 'b']);
    expect(router.states().map((s) => s.lagMs)).to.deep.equal([0, 0]);
  });

  it('a standby staler than the bound is skipped, and used again once it has caught up', async () => {
    const { router, primary, standbys, later, picks } = setup();
    await router.check();
    primary.lsn = 200n;
    standbys.get('b')!.replayed = 200n;
    await later(600);
    expect(router.states()[0]).to.include({ usable: true, lagMs: 600 });
    await later(600);
    expect(router.states()[0]).to.include({ usable: false, lagMs: 1200 });
    expect(router.states()[0]!.reason).to.match(/SYNC_REPLICA_MAX_LAG_MS/);
    expect(picks(3)).to.deep.equal(['b', 'b', 'b']);
    standbys.get('a')!.replayed = 200n;
    await later(250);
    expect(router.states()[0]).to.include({ usable: true, lagMs: 0 });
    expect(picks(2)).to.have.members(['a', 'b']);
  });

  it('an idle primary (no new WAL) never makes a caught-up standby stale', async () => {
    const { router, later } = setup(['a']);
    await router.check();
    for (let i = 0; i < 5; i++) await later(5000);
    expect(router.states()[0]).to.include({ usable: true, lagMs: 0 });
  });

  it('skipped: a standby that does not answer, is not in recovery (promoted), or has replayed nothing', async () => {
    const { router, standbys, picks } = setup(['down', 'promoted', 'empty', 'ok']);
    standbys.get('down')!.down = true;
    standbys.get('promoted')!.inRecovery = false;
    standbys.get('empty')!.replayed = null;
    await router.check();
    expect(picks(3)).to.deep.equal(['ok', 'ok', 'ok']);
    expect(router.states().map((s) => s.reason)).to.deep.equal([
      'it does not answer: connect ECONNREFUSED',
      'it is not a hot standby (pg_is_in_recovery() is false)',
      'it has replayed no WAL yet',
      null,
    ]);
  });

  it('a standby a pull failed on is skipped until a check finds it well', async () => {
    const { router, later, picks } = setup();
    await router.check();
    router.failed('a', new Error('canceling statement due to conflict with recovery'));
    expect(picks(2)).to.deep.equal(['b', 'b']);
    await later(250);
    expect(picks(2)).to.have.members(['a', 'b']);
  });

  it('while the primary cannot be sampled, standbys age past the bound and pulls go to the primary', async () => {
    const { primary, later, picks, router } = setup();
    await router.check();
    primary.down = true;
    await later(600);
    expect(picks(2)).to.have.members(['a', 'b']);
    await later(600);
    expect(picks(2)).to.deep.equal(['primary', 'primary']);
  });

  it('a mark heard from a push is kept for the bound plus two checks, the newest one only', async () => {
    const { router, clock } = setup();
    router.noteMark('u', 50);
    router.noteMark('u', 40);
    expect(router.recentMark('u')).to.equal(50);
    expect(router.recentMark('other')).to.equal(null);
    clock.now += 1000 + 2 * router.checkEveryMs;
    expect(router.recentMark('u')).to.equal(50);
    clock.now += 1;
    expect(router.recentMark('u')).to.equal(null);
  });
});
