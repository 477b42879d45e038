import { createHash } from 'node:crypto';
import { PullChanges, type PullResponse } from '../../../src/application/pull-changes';
import { PushChanges, type PushResponse } from '../../../src/application/push-changes';
import { DEFAULT_SYNC_SETTINGS, type SyncSettings } from '../../../src/application/settings';
import type { Clock, Digest } from '../../../src/application/ports';
import type { SyncError } from '../../../src/domain';
import { MemoryChangeStore, type MemorySnapshot } from '../../fakes/memory-change-store';

/** The two sync use cases over one MemoryChangeStore, a clock the test moves by hand and SHA-256. */

export const START = 1_736_760_000_000;

export class ManualClock implements Clock {
  constructor(public ms = START) {}
  now(): number {
    return this.ms;
  }
}

const sha256: Digest = { hash: (text) => createHash('sha256').update(text, 'utf8').digest('hex') };

export interface SyncFixture {
  readonly store: MemoryChangeStore;
  readonly clock: ManualClock;
  readonly settings: SyncSettings;
  push(userId: string, deviceId: string | null, body: unknown, schemaVersion?: string): Promise<PushResponse>;
  pushError(userId: string, deviceId: string | null, body: unknown, schemaVersion?: string): Promise<SyncError>;
  pull(userId: string, deviceId: string | null, query?: Record<string, string>, schemaVersion?: string): Promise<PullResponse>;
  pullError(userId: string, deviceId: string | null, query?: Record<string, string>, schemaVersion?: string): Promise<SyncError>;
  /** Everything committed for a user: rows with tombstones, stamps, conflicts and receipts. */
  everything(userId: string): MemorySnapshot;
}

export function syncFixture(overrides: Partial<SyncSettings> = {}): SyncFixture {
  const clock = new ManualClock();
  const store = new MemoryChangeStore(() => clock.now());
  const settings: SyncSettings = { ...DEFAULT_SYNC_SETTINGS, ...overrides };
  const pushChanges = new PushChanges(store, clock, sha256, settings);
  const pullChanges = new PullChanges(store, settings);
  const push = (userId: string, deviceId: string | null, body: unknown, schemaVersion?: string) =>
    pushChanges.execute({ userId, deviceId, body, schemaVersion });
  const pull = (userId: string, deviceId: string | null, query: Record<string, string> = {}, schemaVersion?: string) =>
    pullChanges.execute({ userId, deviceId, query, schemaVersion });
  return {
    store,
    clock,
    settings,
    push: async (...args) => (await push(...args))._unsafeUnwrap(),
    pushError: async (...args) => (await push(...args))._unsafeUnwrapErr(),
    pull: async (...args) => (await pull(...args))._unsafeUnwrap(),
    pullError: async (...args) => (await pull(...args))._unsafeUnwrapErr(),
    everything: (userId) => store.snapshot(userId),
  };
}

/** Ids per table and bucket of a pull, leaving out empty buckets. */
export function summary(response: PullResponse): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const [table, changes] of Object.entries(response.changes)) {
    const buckets: Record<string, string[]> = {};
    if (changes.created.length) buckets['created'] = changes.created.map((r) => r['id'] as string);
    if (changes.updated.length) buckets['updated'] = changes.updated.map((r) => r['id'] as string);
    if (changes.deleted.length) buckets['deleted'] = changes.deleted;
    if (Object.keys(buckets).length) out[table] = buckets;
  }
  return out;
}
