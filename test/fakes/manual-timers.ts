import type { Timers } from '../../mobile/src/ports';

/** Timers the test fires by hand, recording every delay asked for. */
export class ManualTimers implements Timers {
  private seq = 0;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  readonly requested: number[] = [];
  clock = 1_700_000_000_000;

  now(): number {
    return this.clock;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { fn, ms });
    this.requested.push(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Delays of the timers still waiting. */
  waiting(): number[] {
    return [...this.pending.values()].map((t) => t.ms);
  }

  /** Fires the waiting timers whose delay equals `ms` (all of them when omitted). */
  fire(ms?: number): number {
    let n = 0;
    for (const [id, t] of [...this.pending]) {
      if (ms !== undefined && t.ms !== ms) continue;
      this.pending.delete(id);
      this.clock += t.ms;
      t.fn();
      n++;
    }
    return n;
  }
}
