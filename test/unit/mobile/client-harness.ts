import sinon from 'sinon';
import { AsyncStorageCheckpointStore } from '../../../mobile/src/adapters/async-storage-checkpoints';
import { createSyncClient, type SyncClient, type SyncClientOptions, type SyncStatus } from '../../../mobile/src/sync-client';
import { FakeNetworkMonitor } from '../../fakes/fake-network-monitor';
import { createInProcessServer, type InProcessServer, type InProcessTransport } from '../../fakes/in-process-transport';
import { MemoryAsyncStorage } from '../../fakes/memory-async-storage';
import { openDriver } from './local-fixture';

/**
 * The real sync client (createSyncClient) on OP-SQLite in memory, AsyncStorage's API over a Map and
 * a switchable network, talking to the server's use cases in-process, under sinon's fake clock:
 * the client's default timers read the faked globals.
 */

export const START = 1_736_760_000_000;
export const USER = 'u1';

export interface ClientHarness {
  readonly clock: sinon.SinonFakeTimers;
  readonly server: InProcessServer;
  readonly transport: InProcessTransport;
  readonly client: SyncClient;
  readonly network: FakeNetworkMonitor;
  readonly checkpoints: AsyncStorageCheckpointStore;
  /** Every status the client published, in order. */
  readonly statuses: SyncStatus[];
  /** Push calls, with their bodies. */
  pushes(): Array<{ push_id: string; last_pulled_at: number | null; records: number; ids: string[] }>;
  /** How many sync runs started (status went to 'syncing'). */
  runs(): number;
  /** Ids of a table's rows on the server for USER (tombstones left out). */
  serverIds(table: string): string[];
  /** Holds the transport's calls at a gate until the returned function is called (close releases it too). */
  hold(): () => void;
  /** Lets every pending promise job run (the fake clock does not move). */
  flush(): Promise<void>;
  /** Moves the fake clock, running due timers and the work they start. */
  tick(ms: number): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly server?: InProcessServer;
  readonly online?: boolean;
  readonly schemaVersion?: number;
  readonly client?: Partial<SyncClientOptions>;
}

export async function openClient(options: HarnessOptions = {}): Promise<ClientHarness> {
  const clock = sinon.useFakeTimers({ now: START, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  try {
    return await harness(clock, options);
  } catch (e) {
    clock.restore();
    throw e;
  }
}

async function harness(clock: sinon.SinonFakeTimers, options: HarnessOptions): Promise<ClientHarness> {
  const server = options.server ?? createInProcessServer();
  const network = new FakeNetworkMonitor(options.online ?? true);
  const checkpoints = new AsyncStorageCheckpointStore(new MemoryAsyncStorage());
  let transport!: InProcessTransport;
  let ids = 0;
  const client = await createSyncClient({
    db: openDriver(),
    checkpoints,
    network,
    transport: (deviceId) => (transport = server.connect(USER, { deviceId, schemaVersion: options.schemaVersion ?? 1 })),
    newId: () => `id${++ids}`,
    ...options.client,
  });
  const statuses: SyncStatus[] = [];
  client.subscribe((s) => statuses.push(s));
  const releases: Array<() => void> = [];
  let closed = false;
  const flush = async () => {
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  };
  return {
    clock,
    server,
    transport,
    client,
    network,
    checkpoints,
    statuses,
    pushes: () =>
      transport.calls.flatMap((c) => {
        if (c.kind !== 'push') return [];
        const changes = Object.values(c.body.changes);
        const recordIds = changes.flatMap((t) => [...t.created, ...t.updated].map((r) => (r as { id: string }).id).concat(t.deleted));
        return [{ push_id: c.body.push_id, last_pulled_at: c.body.last_pulled_at, records: recordIds.length, ids: recordIds }];
      }),
    runs: () => statuses.filter((s, i) => s.state === 'syncing' && statuses[i - 1]?.state !== 'syncing').length,
    serverIds: (table) =>
      server.store
        .snapshot(USER)
        .rows.filter((r) => r.table === table && !r.deleted)
        .map((r) => String(r.values['id']))
        .sort(),
    hold: () => {
      const release = transport.hold();
      releases.push(release);
      return release;
    },
    flush,
    tick: async (ms) => {
      await clock.tickAsync(ms);
      await flush();
    },
    close: async () => {
      if (closed) return;
      closed = true;
      transport.heal();
      for (const release of releases.splice(0)) release();
      await client.close();
      clock.restore();
    },
  };
}
