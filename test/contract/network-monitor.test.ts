import { expect } from 'chai';
import { NetInfoNetworkMonitor, type NetInfoLike } from '../../mobile/src/adapters/netinfo-monitor';
import { FakeNetworkMonitor } from '../fakes/fake-network-monitor';
import { runNetworkMonitorContract } from './network-monitor.contract';

type NetInfoState = Parameters<Parameters<NetInfoLike['addEventListener']>[0]>[0];

/**
 * The shape of `@react-native-community/netinfo` the adapter uses: listeners, and a state that the
 * test sets as the platform would. Like NetInfo, a new listener hears the current state at once.
 */
class NetInfoEmitter implements NetInfoLike {
  private readonly listeners = new Set<(state: NetInfoState) => void>();

  constructor(private state: NetInfoState) {}

  addEventListener(listener: (state: NetInfoState) => void): () => void {
    this.listeners.add(listener);
    listener(this.state);
    return () => this.listeners.delete(listener);
  }

  emit(state: NetInfoState): void {
    this.state = state;
    for (const l of [...this.listeners]) l(state);
  }
}

const ONLINE: NetInfoState = { isConnected: true, isInternetReachable: true };
const OFFLINE: NetInfoState = { isConnected: false, isInternetReachable: false };

runNetworkMonitorContract('FakeNetworkMonitor', () => {
  const monitor = new FakeNetworkMonitor(true);
  return { monitor, goOffline: () => monitor.setOnline(false), goOnline: () => monitor.setOnline(true) };
});

runNetworkMonitorContract('NetInfoNetworkMonitor', () => {
  const netInfo = new NetInfoEmitter(ONLINE);
  return { monitor: new NetInfoNetworkMonitor(netInfo), goOffline: () => netInfo.emit(OFFLINE), goOnline: () => netInfo.emit(ONLINE) };
});

describe('NetInfoNetworkMonitor reading NetInfo states', () => {
  it('starts offline when NetInfo reports no connection on subscription', () => {
    const monitor = new NetInfoNetworkMonitor(new NetInfoEmitter(OFFLINE));
    expect(monitor.isOnline()).to.equal(false);
  });

  const cases: Array<[string, NetInfoState, boolean]> = [
    ['connected, internet reachable', { isConnected: true, isInternetReachable: true }, true],
    ['connected, reachability not yet known', { isConnected: true, isInternetReachable: null }, true],
    ['connected, reachability not reported', { isConnected: true }, true],
    ['connected to a network without internet (captive portal)', { isConnected: true, isInternetReachable: false }, false],
    ['not connected', { isConnected: false, isInternetReachable: null }, false],
    ['connection unknown', { isConnected: null, isInternetReachable: null }, false],
  ];
  for (const [title, state, online] of cases) {
    it(`is ${online ? 'online' : 'offline'} when ${title}`, () => {
      const netInfo = new NetInfoEmitter(online ? OFFLINE : ONLINE);
      const monitor = new NetInfoNetworkMonitor(netInfo);
      const heard: boolean[] = [];
      monitor.subscribe((o) => heard.push(o));
      netInfo.emit(state);
      expect(monitor.isOnline()).to.equal(online);
      expect(heard).to.deep.equal([online]);
    });
  }

  it('does not tell listeners about a new NetInfo state that leaves it online', () => {
    const netInfo = new NetInfoEmitter(ONLINE);
    const monitor = new NetInfoNetworkMonitor(netInfo);
    const heard: boolean[] = [];
    monitor.subscribe((o) => heard.push(o));
    netInfo.emit({ isConnected: true, isInternetReachable: null });
    netInfo.emit({ isConnected: true, isInternetReachable: true });
    expect(heard).to.deep.equal([]);
    expect(monitor.isOnline()).to.equal(true);
  });
});
