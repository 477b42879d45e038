import { FetchEventSource } from '../../mobile/src/adapters/fetch-event-source';
import type { EventSourceEvent } from '../../mobile/src/ports';

/** A live channel as a test reads it: every event kept in order, and a wait on any condition. */
export interface TestChannel {
  readonly events: EventSourceEvent[];
  /** Resolves with the first event (already received or to come) that matches; rejects after `timeoutMs`. */
  waitFor(match: (e: EventSourceEvent) => boolean, what: string, timeoutMs?: number): Promise<EventSourceEvent>;
  close(): void;
}

export function openChannel(baseUrl: string, token: string, deviceId?: string): TestChannel {
  const events: EventSourceEvent[] = [];
  const waiters = new Set<() => void>();
  const es = new FetchEventSource(`${baseUrl}/api/sync/live`, { headers: { authorization: `Bearer ${token}`, ...(deviceId ? { 'x-device-id': deviceId } : {}) } });
  for (const type of ['open', 'hello', 'change', 'check', 'bye', 'error', 'done']) {
    es.addEventListener(type, (e) => {
      events.push(e);
      for (const w of [...waiters]) w();
    });
  }
  return {
    events,
    close: () => es.close(),
    waitFor: (match, what, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; events so far: ${JSON.stringify(events)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

export const dataOf = (e: EventSourceEvent): any => JSON.parse(e.data ?? 'null');
