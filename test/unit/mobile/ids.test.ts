import { expect } from 'chai';
import sinon from 'sinon';
import { AsyncStorageCheckpointStore } from '../../../mobile/src/adapters/async-storage-checkpoints';
import { NoSecureRandomSourceError, secureRandomBytes, uuidV4 } from '../../../mobile/src/ids';
import { createSyncClient } from '../../../mobile/src/sync-client';
import { FakeNetworkMonitor } from '../../fakes/fake-network-monitor';
import { createInProcessServer } from '../../fakes/in-process-transport';
import { MemoryAsyncStorage } from '../../fakes/memory-async-storage';
import { openDriver } from './local-fixture';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Runs `fn` on an engine without `globalThis.crypto` (as Hermes is without react-native-get-random-values). */
async function withoutCrypto<T>(fn: () => Promise<T> | T): Promise<T> {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!;
  Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
  try {
    return await fn();
  } finally {
    Object.defineProperty(globalThis, 'crypto', descriptor);
  }
}

describe('mobile ids', () => {
  it('are version 4 UUIDs from crypto.getRandomValues, all different', () => {
    const ids = Array.from({ length: 1000 }, () => uuidV4());
    for (const id of ids) expect(id).to.match(UUID_V4);
    expect(new Set(ids).size).to.equal(1000);
  });

  it('take their bits from an injected randomBytes, setting only the version and variant bits', () => {
    expect(uuidV4(() => new Uint8Array(16).fill(0xff))).to.equal('ffffffff-ffff-4fff-bfff-ffffffffffff');
    expect(uuidV4(() => new Uint8Array(16))).to.equal('00000000-0000-4000-8000-000000000000');
    expect(uuidV4(() => Uint8Array.from({ length: 16 }, (_, i) => i))).to.equal('00010203-0405-4607-8809-0a0b0c0d0e0f');
  });

  it('refuse a randomBytes that gives too few bytes (bad input: 8 bytes)', () => {
    expect(() => uuidV4(() => new Uint8Array(8))).to.throw(TypeError, /16 bytes/);
  });

  it('without a random source, fail with an error naming react-native-get-random-values', async () => {
    const error = await withoutCrypto(() => {
      try {
        secureRandomBytes(16);
        return null;
      } catch (e) {
        return e;
      }
    });
    expect(error).to.be.instanceOf(NoSecureRandomSourceError);
    expect((error as Error).message).to.include('react-native-get-random-values').and.include('randomBytes');
  });

  describe('in createSyncClient', () => {
    const options = () => {
      const server = createInProcessServer();
      return {
        db: openDriver(),
        checkpoints: new AsyncStorageCheckpointStore(new MemoryAsyncStorage()),
        network: new FakeNetworkMonitor(false),
        transport: (deviceId: string) => server.connect('u1', { deviceId, schemaVersion: 1 }),
      };
    };

    it('give the device and new records UUIDs by default', async () => {
      const client = await createSyncClient(options());
      try {
        expect(client.deviceId).to.match(UUID_V4);
        const row = await client.local.create('ideas', { text: 'an idea' });
        expect(row['id']).to.match(UUID_V4);
      } finally {
        await client.close();
      }
    });

    it('use an injected randomBytes when the engine has no crypto', async () => {
      let calls = 0;
      const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => ++calls & 0xff);
      const client = await withoutCrypto(() => createSyncClient({ ...options(), randomBytes }));
      try {
        const row = await client.local.create('ideas', { text: 'an idea' });
        expect(row['id']).to.match(UUID_V4);
        expect(calls, "the database's instance id, the device id and the record id drew from it").to.equal(48);
      } finally {
        await client.close();
      }
    });

    it('refuse to start without a random source, before opening the database', async () => {
      const opts = options();
      const execute = sinon.spy(opts.db, 'execute');
      const transaction = sinon.spy(opts.db, 'transaction');
      const error = await withoutCrypto(() => createSyncClient(opts).then(() => null, (e: unknown) => e));
      expect(error).to.be.instanceOf(NoSecureRandomSourceError);
      expect(execute.callCount + transaction.callCount, 'no statement ran').to.equal(0);
      await opts.db.close();
    });
  });
});
