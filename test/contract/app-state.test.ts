import { expect } from 'chai';
import { RnAppStateMonitor, type AppStateLike } from '../../mobile/src/adapters/rn-app-state-monitor';
import type { AppStateMonitor } from '../../mobile/src/ports';
import { FakeAppState } from '../fakes/fake-app-state';

/**
 * The AppStateMonitor port's contract (mobile/src/ports/app-state.ts), run against the fake and
 * the React Native adapter: `isForeground` reflects the last known state; each listener hears
 * every change, not repeats, until it unsubscribes.
 */
function runAppStateContract(name: string, make: () => { monitor: AppStateMonitor; background(): void; foreground(): void }): void {
  describe(`AppStateMonitor contract: ${name}`, () => {
    it('reports the last known state and tells listeners each change, not repeats, until they unsubscribe', () => {
      const s = make();
      expect(s.monitor.isForeground()).to.equal(true);
      const heard: Array<[boolean, boolean]> = [];
      const stop = s.monitor.subscribe((f) => heard.push([f, s.monitor.isForeground()]));
      s.background();
      s.background();
      s.foreground();
      s.foreground();
      stop();
      s.background();
      expect(heard).to.deep.equal([
        [false, false],
        [true, true],
      ]);
      expect(s.monitor.isForeground()).to.equal(false);
    });
  });
}

/** React Native's AppState as the adapter sees it: a current state and change listeners. */
class AppStateEmitter implements AppStateLike {
  currentState: string = 'active';
  private readonly listeners = new Set<(state: string) => void>();
  addEventListener(_type: 'change', listener: (state: string) => void): { remove(): void } {
    this.listeners.add(listener);
    return { remove: () => this.listeners.delete(listener) };
  }
  emit(state: string): void {
    this.currentState = state;
    for (const l of [...this.listeners]) l(state);
  }
}

runAppStateContract('FakeAppState', () => {
  const monitor = new FakeAppState(true);
  return { monitor, background: () => monitor.set(false), foreground: () => monitor.set(true) };
});

runAppStateContract('RnAppStateMonitor', () => {
  const appState = new AppStateEmitter();
  return { monitor: new RnAppStateMonitor(appState), background: () => appState.emit('background'), foreground: () => appState.emit('active') };
});

describe('RnAppStateMonitor reading AppState', () => {
  it("counts iOS's inactive (app switcher, a call) as not foreground, and starts from the current state", () => {
    const appState = new AppStateEmitter();
    appState.currentState = 'background';
    const monitor = new RnAppStateMonitor(appState);
    expect(monitor.isForeground()).to.equal(false);
    appState.emit('active');
    expect(monitor.isForeground()).to.equal(true);
    appState.emit('inactive');
    expect(monitor.isForeground()).to.equal(false);
  });
});
