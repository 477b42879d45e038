import { expect } from 'chai';
import { AsyncStorageCheckpointStore } from '../../mobile/src/adapters/async-storage-checkpoints';
import { TABLE_NAMES } from '../../src/domain';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryAsyncStorage } from '../fakes/memory-async-storage';
import { SqliteAsyncStorage } from '../fakes/sqlite-async-storage';
import { runCheckpointStoreContract } from './checkpoint-store.contract';

runCheckpointStoreContract('AsyncStorageCheckpointStore over MemoryAsyncStorage', async () => {
  const storage = new MemoryAsyncStorage();
  return { store: new AsyncStorageCheckpointStore(storage), reopen: () => new AsyncStorageCheckpointStore(storage) };
});

runCheckpointStoreContract('AsyncStorageCheckpointStore over SqliteAsyncStorage (a file, reopened)', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'sync-kv-')), 'storage.db');
  return { store: new AsyncStorageCheckpointStore(new SqliteAsyncStorage(file)), reopen: () => new AsyncStorageCheckpointStore(new SqliteAsyncStorage(file)) };
});

describe('AsyncStorageCheckpointStore keys (spec §5)', () => {
  it('stores each cursor under exactly sync_last_pulled_${table}, as a decimal string', async () => {
    const storage = new MemoryAsyncStorage();
    const store = new AsyncStorageCheckpointStore(storage);
    for (const [i, table] of TABLE_NAMES.entries()) await store.setLastPulledAt(table, 1_736_760_000_000 + i);
    expect(Object.fromEntries(storage.items)).to.deep.equal({
      sync_last_pulled_captures: '1736760000000',
      sync_last_pulled_todos: '1736760000001',
      sync_last_pulled_thoughts: '1736760000002',
      sync_last_pulled_ideas: '1736760000003',
      sync_last_pulled_projects: '1736760000004',
    });
  });

  it("keeps a user's checkpoints under the same keys with @ and the user (percent-encoded), and the database id under sync_database_id", async () => {
    const storage = new MemoryAsyncStorage();
    const alice = new AsyncStorageCheckpointStore(storage).scope('alice@example.com');
    await alice.setLastPulledAt('todos', 7);
    await alice.setDeviceId('dev-a');
    await alice.setDatabaseId('db-a');
    await alice.setPushAttempt('ideas', { key: 'k', pushId: 'p', lastPulledAt: 7 }, 2);
    expect([...storage.items.keys()].sort()).to.deep.equal([
      'sync_database_id@alice%40example.com',
      'sync_device_id@alice%40example.com',
      'sync_last_pulled_todos@alice%40example.com',
      'sync_push_attempt_ideas#2@alice%40example.com',
    ]);
  });

  it('removes the key when a cursor is set to null', async () => {
    const storage = new MemoryAsyncStorage();
    const store = new AsyncStorageCheckpointStore(storage);
    await store.setLastPulledAt('todos', 42);
    await store.setLastPulledAt('todos', null);
    expect([...storage.items.keys()]).to.deep.equal([]);
  });

  it('reads a cursor written by an earlier app version under the same key', async () => {
    const storage = new MemoryAsyncStorage();
    await storage.setItem('sync_last_pulled_ideas', '1736760600000');
    expect(await new AsyncStorageCheckpointStore(storage).getLastPulledAt('ideas')).to.equal(1_736_760_600_000);
  });

  it('reads a damaged or non-positive stored cursor as null, so the table is pulled in full', async () => {
    const storage = new MemoryAsyncStorage();
    const store = new AsyncStorageCheckpointStore(storage);
    for (const [table, raw] of [['captures', 'garbage'], ['todos', '0'], ['thoughts', '-5'], ['ideas', '']] as const) {
      await storage.setItem(`sync_last_pulled_${table}`, raw);
      expect(await store.getLastPulledAt(table), `${table} = ${JSON.stringify(raw)}`).to.equal(null);
    }
  });

  it('keeps the device id under its own key, apart from every cursor', async () => {
    const storage = new MemoryAsyncStorage();
    const store = new AsyncStorageCheckpointStore(storage);
    await store.setDeviceId('device-1');
    expect([...storage.items.keys()].filter((k) => k.startsWith('sync_last_pulled_'))).to.deep.equal([]);
    expect([...storage.items.values()]).to.deep.equal(['device-1']);
  });

  it('keeps a push attempt as JSON under sync_push_attempt_${table}, and reads a damaged one as none (bad input: garbage, wrong types, null)', async () => {
    const storage = new MemoryAsyncStorage();
    const store = new AsyncStorageCheckpointStore(storage);
    await store.setPushAttempt('todos', { key: 'k:1', pushId: 'p1', lastPulledAt: null });
    expect(JSON.parse(storage.items.get('sync_push_attempt_todos')!)).to.deep.equal({ key: 'k:1', pushId: 'p1', lastPulledAt: null });
    for (const raw of ['garbage', '{"key":1,"pushId":"p","lastPulledAt":null}', '{"key":"k","pushId":"p","lastPulledAt":"5"}', 'null']) {
      await storage.setItem('sync_push_attempt_ideas', raw);
      expect(await store.getPushAttempt('ideas'), raw).to.equal(null);
    }
  });

  it('keeps slot 0 under the key of old (so an attempt left by an earlier app version is settled) and slot n under sync_push_attempt_${table}#n; refuses a slot that is not 0-15', async () => {
    const storage = new MemoryAsyncStorage();
    await storage.setItem('sync_push_attempt_captures', JSON.stringify({ key: 'old:1', pushId: 'p-old', lastPulledAt: 3 }));
    const store = new AsyncStorageCheckpointStore(storage);
    expect(await store.getPushAttempt('captures', 0)).to.deep.equal({ key: 'old:1', pushId: 'p-old', lastPulledAt: 3 });
    await store.setPushAttempt('captures', { key: 'k:2', pushId: 'p2', lastPulledAt: 3 }, 1);
    expect(JSON.parse(storage.items.get('sync_push_attempt_captures#1')!)).to.deep.equal({ key: 'k:2', pushId: 'p2', lastPulledAt: 3 });
    for (const slot of [-1, 16, 1.5, Number.NaN]) {
      const refused = await store.getPushAttempt('captures', slot).then(
        () => null,
        (e: unknown) => e,
      );
      expect(refused, String(slot)).to.be.instanceOf(RangeError);
    }
  });
});
