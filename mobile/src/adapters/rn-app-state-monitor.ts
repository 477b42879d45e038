import type { AppStateMonitor } from '../ports';

/** The part of React Native's `AppState` this adapter uses. */
export interface AppStateLike {
  readonly currentState: string | null | undefined;
  addEventListener(type: 'change', listener: (state: string) => void): { remove(): void };
}

/** AppStateMonitor over React Native's AppState: foreground when `active` (`background` and iOS's `inactive` are not). */
export class RnAppStateMonitor implements AppStateMonitor {
  private foreground: boolean;
  private readonly listeners = new Set<(foreground: boolean) => void>();

  constructor(appState: AppStateLike) {
    this.foreground = appState.currentState === 'active' || appState.currentState == null;
    appState.addEventListener('change', (state) => {
      const foreground = state === 'active';
      if (foreground === this.foreground) return;
      this.foreground = foreground;
      for (const l of [...this.listeners]) l(foreground);
    });
  }

  isForeground(): boolean {
    return this.foreground;
  }

  subscribe(listener: (foreground: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
