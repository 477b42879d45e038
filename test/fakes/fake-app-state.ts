import type { AppStateMonitor } from '../../mobile/src/ports';

/** An app the test sends to the background and back; passes the AppStateMonitor contract. */
export class FakeAppState implements AppStateMonitor {
  private readonly listeners = new Set<(foreground: boolean) => void>();

  constructor(private foreground = true) {}

  isForeground(): boolean {
    return this.foreground;
  }

  subscribe(listener: (foreground: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(foreground: boolean): void {
    if (foreground === this.foreground) return;
    this.foreground = foreground;
    for (const l of [...this.listeners]) l(foreground);
  }
}
