import { expect } from 'chai';
import type { NetworkMonitor } from '../../mobile/src/ports';

/**
 * The NetworkMonitor port's contract (mobile/src/ports/network-monitor.ts), run against every
 * implementation: `isOnline` reflects the last known state; each listener hears every change of
 * state, not repeats, until it unsubscribes.
 */

export interface NetworkMonitorUnderTest {
  /** A monitor that currently reports the device online. */
  readonly monitor: NetworkMonitor;
  /** Makes the platform report the network lost / back (also when it already is). */
  goOffline(): void;
  goOnline(): void;
}

export function runNetworkMonitorContract(name: string, make: () => NetworkMonitorUnderTest): void {
  describe(`NetworkMonitor contract: ${name}`, () => {
    let subject: NetworkMonitorUnderTest;
    beforeEach(() => {
      subject = make();
    });

    it('reports the last known state', () => {
      expect(subject.monitor.isOnline()).to.equal(true);
      subject.goOffline();
      expect(subject.monitor.isOnline()).to.equal(false);
      subject.goOnline();
      expect(subject.monitor.isOnline()).to.equal(true);
    });

    it('tells a listener about each change of state, and not about repeats', () => {
      const heard: boolean[] = [];
      subject.monitor.subscribe((online) => heard.push(online));
      subject.goOnline();
      subject.goOffline();
      subject.goOffline();
      subject.goOnline();
      subject.goOnline();
      subject.goOffline();
      expect(heard).to.deep.equal([false, true, false]);
    });

    it('has already updated isOnline when a listener is called', () => {
      const seen: Array<[boolean, boolean]> = [];
      subject.monitor.subscribe((online) => seen.push([online, subject.monitor.isOnline()]));
      subject.goOffline();
      subject.goOnline();
      expect(seen).to.deep.equal([
        [false, false],
        [true, true],
      ]);
    });

    it('tells every listener, and stops telling one that unsubscribed', () => {
      const first: boolean[] = [];
      const second: boolean[] = [];
      const stopFirst = subject.monitor.subscribe((online) => first.push(online));
      subject.monitor.subscribe((online) => second.push(online));
      subject.goOffline();
      stopFirst();
      subject.goOnline();
      subject.goOffline();
      expect(first).to.deep.equal([false]);
      expect(second).to.deep.equal([false, true, false]);
    });

    it('lets a listener unsubscribe while being called without the others missing the change', () => {
      const heard: string[] = [];
      const stop = subject.monitor.subscribe(() => {
        heard.push('first');
        stop();
      });
      subject.monitor.subscribe((online) => heard.push(`second:${online}`));
      subject.goOffline();
      subject.goOnline();
      expect(heard).to.deep.equal(['first', 'second:false', 'second:true']);
    });
  });
}
