import type { NetworkMonitor } from '../ports';

/** The part of `@react-native-community/netinfo` this adapter uses. */
export interface NetInfoLike {
  addEventListener(listener: (state: { isConnected: boolean | null; isInternetReachable?: boolean | null }) => void): () => void;
}

/** NetworkMonitor over NetInfo: online when connected and the internet is not known to be unreachable. */
export class NetInfoNetworkMonitor implements NetworkMonitor {
  private online = true;
  private readonly listeners = new Set<(online: boolean) => void>();

  constructor(netInfo: NetInfoLike) {
    netInfo.addEventListener((state) => {
      const online = state.isConnected === true && state.isInternetReachable !== false;
      if (online === this.online) return;
      this.online = online;
      for (const l of [...this.listeners]) l(online);
    });
  }

  isOnline(): boolean {
    return this.online;
  }

  subscribe(listener: (online: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
