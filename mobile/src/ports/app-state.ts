/**
 * Whether the app is in the foreground. Contract: `isForeground` reflects the last known state; a
 * listener hears every change (not repeats) until it unsubscribes. The live channel is held only
 * in the foreground: a background app must not keep a socket (and the OS would cut it anyway).
 */
export interface AppStateMonitor {
  isForeground(): boolean;
  subscribe(listener: (foreground: boolean) => void): () => void;
}
