import { expect } from 'chai';
import { err } from 'neverthrow';
import { networkFailure } from '../../src/domain';
import type { SyncMetrics, SyncTransport } from '../../mobile/src/ports';
import { ManualTimers } from '../fakes/manual-timers';
import { describeEachDatabase } from '../support/databases';
import { useDevices } from '../support/device';

/** The client measures each sync and hands the figures to the app (status and a MetricsSink). */
describeEachDatabase('mobile client metrics', (ctx) => {
  const { device, server } = useDevices(ctx);

  const httpDevice = (user: string, sink: SyncMetrics[]) =>
    device(user, {
      extra: { server: { baseUrl: server().url, getToken: () => server().token(user), schemaVersion: 1 }, transport: undefined, metrics: { record: (m) => sink.push(m) } },
    });

  it('measures records and bytes each way, the result and the duration of each sync', async () => {
    const sent: SyncMetrics[] = [];
    const d1 = await httpDevice('m1', sent);
    for (let i = 0; i < 3; i++) await d1.client.local.create('ideas', { id: `i${i}`, text: `idea ${i}` });
    expect((await d1.client.sync()).isOk()).to.equal(true);
    expect(sent).to.have.length(1);
    const first = sent[0]!;
    expect(first).to.include({ recordsPushed: 3, recordsPulled: 0, result: 'ok', retries: 0, conflicts: 0 });
    expect(first.bytesSent).to.be.greaterThan(50);
    expect(first.bytesReceived).to.be.greaterThan(100);
    expect(first.durationMs).to.be.at.least(0);
    expect(d1.client.getStatus().lastSync).to.deep.equal(first);

    const received: SyncMetrics[] = [];
    const d2 = await httpDevice('m1', received);
    expect((await d2.client.sync()).isOk()).to.equal(true);
    expect(received[0]).to.include({ recordsPulled: 3, recordsPushed: 0, bytesSent: 0, result: 'ok' });
  });

  it('counts the retries before a sync that finally succeeds, and records each failure', async () => {
    const timers = new ManualTimers();
    let failures = 2;
    const flaky = (inner: SyncTransport): SyncTransport => ({
      pull: async (p) => (failures-- > 0 ? err(networkFailure('no route to host')) : inner.pull(p)),
      push: (b) => inner.push(b),
    });
    const sink: SyncMetrics[] = [];
    const d = await device('m2', { wrap: flaky, timers, extra: { metrics: { record: (m) => sink.push(m) } } });
    await d.client.local.create('ideas', { id: 'x', text: 'eventually' });
    d.client.start();
    for (let i = 0; i < 500 && sink.length < 3; i++) { // up to 10 s: a loaded machine is slow, the loop ends at the third sync
      await new Promise((r) => setTimeout(r, 20));
      const retry = timers.waiting().find((ms) => ms < 60_000);
      if (retry !== undefined && d.client.getStatus().state !== 'syncing') timers.fire(retry);
    }
    expect(sink.map((m) => [m.result, m.retries])).to.deep.equal([
      ['NETWORK_ERROR', 0],
      ['NETWORK_ERROR', 1],
      ['ok', 2],
    ]);
    expect(sink[2]).to.include({ recordsPushed: 1 });
  });
});
