/**
 * Whether the device can reach the network. Contract (test/contract/network-monitor.contract.ts):
 * `isOnline` reflects the last known state; a listener hears every change of state (not
 * repeats) until it unsubscribes.
 */
export interface NetworkMonitor {
  isOnline(): boolean;
  subscribe(listener: (online: boolean) => void): () => void;
}
