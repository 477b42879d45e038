/**
 * One task per key at a time, in arrival order, with at most `maxWaiting` tasks waiting per key.
 * A waiting task holds nothing but its place (no database connection): the push uses it so one
 * user's parallel pushes cannot take the whole pool while they queue on that user's lock.
 */
export class PerKeyQueue {
  private readonly keys = new Map<string, { waiting: number; tail: Promise<void> }>();

  constructor(private readonly maxWaiting: number) {}

  /** Runs `task` when the key's earlier tasks are done; null (task not run) when `maxWaiting` already wait. */
  async run<T>(key: string, task: () => Promise<T>): Promise<{ value: T } | null> {
    let entry = this.keys.get(key);
    if (entry && entry.waiting >= this.maxWaiting) return null;
    if (!entry) this.keys.set(key, (entry = { waiting: -1, tail: Promise.resolve() }));
    // waiting counts the tasks queued behind the running one (-1: none running).
    entry.waiting++;
    const previous = entry.tail;
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    entry.tail = previous.then(() => mine);
    await previous;
    try {
      return { value: await task() };
    } finally {
      entry.waiting--;
      if (entry.waiting < 0) this.keys.delete(key);
      release();
    }
  }

  /** Keys with a task running or waiting. */
  size(): number {
    return this.keys.size;
  }
}
