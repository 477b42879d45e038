import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsyncStorageCheckpointStore } from '../../../mobile/src/adapters/async-storage-checkpoints';
import { databaseKeyName } from '../../../mobile/src/database-key';
import { installMarkerName } from '../../../mobile/src/device-identity';
import { checkTokenUser, guardToken, tokenSubject, WrongUserError } from '../../../mobile/src/identity';
import { migrateLocalDatabase } from '../../../mobile/src/local-schema';
import { createSyncClient, type SyncClientOptions, type TokenGuard } from '../../../mobile/src/sync-client';
import { FakeNetworkMonitor } from '../../fakes/fake-network-monitor';
import { createInProcessServer } from '../../fakes/in-process-transport';
import { MemoryAsyncStorage } from '../../fakes/memory-async-storage';
import { MemoryKeyStore } from '../../fakes/memory-key-store';
import { openDriver } from './local-fixture';

const b64url = (text: string) => new TextEncoder().encode(text).reduce((s, b) => s + String.fromCharCode(b), '');
const jwt = (payload: unknown, pad = false) => {
  const part = (o: unknown) => {
    const b = btoa(b64url(JSON.stringify(o)));
    return (pad ? b : b.replace(/=+$/, '')).replace(/\+/g, '-').replace(/\//g, '_');
  };
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.c2lnbmF0dXJl`;
};

describe("a token's user (read without verifying: the server verifies)", () => {
  it('reads `sub` from base64url, with or without padding, in any script', () => {
    for (const sub of ['u1', 'zoë@example.com', '用户-42', 'emoji 🙂 user', 'a'.repeat(255), '>>>???']) {
      expect(tokenSubject(jwt({ sub, exp: 1 })), sub).to.equal(sub);
      expect(tokenSubject(jwt({ sub }, true)), `${sub} (padded)`).to.equal(sub);
    }
  });

  it('reads none from what is not a JWT with a string sub (bad input: no dots, 2 parts, not base64, not JSON, bad UTF-8, sub a number, no sub)', () => {
    const bad = ['', 'abc', 'a.b', 'a.!!!.c', `x.${btoa('{not json').replace(/=+$/, '')}.y`, 'x.wygA.y', jwt({ sub: 42 }), jwt({ name: 'x' }), jwt(null), jwt('u1')];
    for (const token of bad) expect(tokenSubject(token), token).to.equal(null);
  });

  it('refuses a token of another user or of none with WrongUserError, naming both users', () => {
    expect(() => checkTokenUser(jwt({ sub: 'u1' }), 'u1')).not.to.throw();
    expect(() => checkTokenUser(jwt({ sub: 'u2' }), 'u1')).to.throw(WrongUserError, /"u2".*"u1"/);
    expect(() => checkTokenUser('opaque', 'u1')).to.throw(WrongUserError, /names no user/);
    const e = new WrongUserError('x');
    expect(e.failure).to.deep.equal({ kind: 'AUTH_ERROR', retryable: false, code: 'WRONG_USER', message: 'x' });
  });

  it('guards a token getter: its arguments pass through, its tokens are checked', async () => {
    const seen: unknown[] = [];
    const get = (options?: { forceRefresh?: boolean }) => (seen.push(options), jwt({ sub: options?.forceRefresh ? 'u2' : 'u1' }));
    const guarded = guardToken(get, 'u1');
    expect(tokenSubject(await guarded())).to.equal('u1');
    const refused = await guarded({ forceRefresh: true }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).to.be.instanceOf(WrongUserError);
    expect(seen).to.deep.equal([undefined, { forceRefresh: true }]);
  });

  it('is decoded without Node-only globals (the client runs on Hermes)', async () => {
    const { readFileSync } = await import('node:fs');
    const source = readFileSync(join(__dirname, '../../../mobile/src/identity.ts'), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    expect(source).not.to.match(/\bBuffer\b|\batob\b|\bTextDecoder\b|\brequire\(/);
  });
});

describe('a client for one user', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const server = createInProcessServer();
  const options = (storage: MemoryAsyncStorage, extra: Partial<SyncClientOptions> & { userId?: string } = {}) => {
    const dir = mkdtempSync(join(tmpdir(), 'accounts-'));
    dirs.push(dir);
    return {
      db: openDriver(dir, 'user.db'),
      checkpoints: new AsyncStorageCheckpointStore(storage),
      network: new FakeNetworkMonitor(false),
      transport: (deviceId: string) => server.connect(extra.userId ?? 'u1', { deviceId, schemaVersion: 1 }),
      ...extra,
    };
  };

  it("takes over the checkpoints and device id of an install from before accounts, when it opens that install's database", async () => {
    const storage = new MemoryAsyncStorage();
    const opts = options(storage, { userId: 'alice', keyStore: new MemoryKeyStore() });
    // The database and AsyncStorage as an app version without accounts left them.
    await migrateLocalDatabase(opts.db);
    await opts.db.execute('DROP TABLE sync_meta');
    const old = new AsyncStorageCheckpointStore(storage);
    await old.setDeviceId('device-of-before');
    await old.setLastPulledAt('todos', 1234);
    await old.setPushAttempt('ideas', { key: 'k', pushId: 'p-before', lastPulledAt: 1234 }, 1);
    // The upgraded app killed once after giving the database its id, before taking the checkpoints over.
    expect(await migrateLocalDatabase(opts.db)).to.deep.include({ instanceCreated: true, adoptCheckpoints: true });
    const client = await createSyncClient(opts);
    try {
      expect(client.deviceId).to.equal('device-of-before');
      const mine = new AsyncStorageCheckpointStore(storage).scope('alice');
      expect(await mine.getLastPulledAt('todos')).to.equal(1234);
      expect(await mine.getPushAttempt('ideas', 1)).to.deep.equal({ key: 'k', pushId: 'p-before', lastPulledAt: 1234 });
      // Moved, not copied: nothing is left under the keys of before for another user to take.
      expect([...storage.items.keys()].filter((k) => !k.includes('@'))).to.deep.equal([]);
      expect((opts.keyStore as MemoryKeyStore).entries.size, 'the install marker').to.equal(1);
    } finally {
      await client.close();
    }
    // Opened again: the same device, the same cursors; nothing left to take over.
    const db2 = openDriver(dirs[dirs.length - 1]!, 'user.db');
    const again = await createSyncClient({ ...opts, db: db2 });
    try {
      expect(again.deviceId).to.equal('device-of-before');
      expect(await db2.execute("SELECT key FROM sync_meta WHERE key = 'adopt_checkpoints'")).to.deep.equal([]);
      expect(await again.knownMark()).to.equal(null); // only todos was ever pulled
    } finally {
      await again.close();
    }
  });

  it("checks the tokens of a client made without userId against the user who claimed its database", async () => {
    const storage = new MemoryAsyncStorage();
    const opts = options(storage, { userId: 'alice' });
    await (await createSyncClient(opts)).close();
    let guard!: TokenGuard;
    const { userId: _none, ...unscoped } = opts;
    const client = await createSyncClient({
      ...unscoped,
      db: openDriver(dirs[dirs.length - 1]!, 'user.db'),
      transport: (deviceId, g) => ((guard = g), server.connect('alice', { deviceId, schemaVersion: 1 })),
    });
    try {
      expect(client.userId).to.equal(undefined);
      expect(tokenSubject(await guard(() => jwt({ sub: 'alice' }))())).to.equal('alice');
      const refused = await guard(() => jwt({ sub: 'bob' }))().then(
        () => null,
        (e: unknown) => e,
      );
      expect(refused).to.be.instanceOf(WrongUserError);
    } finally {
      await client.close();
    }
  });

  it('refuses an empty userId (bad input: "")', async () => {
    const opts = options(new MemoryAsyncStorage(), { userId: '' });
    const refused = await createSyncClient(opts).then(
      () => null,
      (e: unknown) => e,
    );
    await opts.db.close();
    expect(refused).to.be.instanceOf(TypeError);
  });

  it('signs out keeping everything by default; a wipe deletes the file, this user\'s checkpoints and keys, and nothing of another user', async () => {
    const storage = new MemoryAsyncStorage();
    const keyStore = new MemoryKeyStore();
    await keyStore.set(databaseKeyName('alice'), 'alice-key');
    await keyStore.set(databaseKeyName('bob'), 'bob-key');
    await new AsyncStorageCheckpointStore(storage).scope('bob').setLastPulledAt('ideas', 99);
    const deleted: string[] = [];
    const opts = options(storage, { userId: 'alice', keyStore, deleteDatabase: async () => void deleted.push('alice.db') });
    const kept = await createSyncClient(opts);
    const instance = (await opts.db.execute("SELECT value FROM sync_meta WHERE key = 'instance_id'"))[0]!['value'] as string;
    await kept.signOut();
    expect(deleted).to.deep.equal([]);
    expect(await new AsyncStorageCheckpointStore(storage).scope('alice').getDeviceId()).to.equal(kept.deviceId);
    expect(await keyStore.get(installMarkerName(instance))).to.equal(kept.deviceId);

    const wiped = await createSyncClient({ ...opts, db: openDriver(dirs[dirs.length - 1]!, 'user.db') });
    expect(wiped.deviceId).to.equal(kept.deviceId);
    await wiped.signOut({ wipe: true });
    expect(deleted).to.deep.equal(['alice.db']);
    expect([...storage.items.keys()]).to.deep.equal(['sync_last_pulled_ideas@bob']);
    expect([...keyStore.entries.keys()]).to.deep.equal([databaseKeyName('bob')]);
  });

  it('refuses a wipe it cannot do whole (bad input: no deleteDatabase; a key store without remove) before closing or deleting anything', async () => {
    const storage = new MemoryAsyncStorage();
    const noRemove = { get: async () => null, set: async () => undefined };
    for (const extra of [{}, { deleteDatabase: async () => undefined, keyStore: noRemove }]) {
      const client = await createSyncClient(options(storage, { userId: 'carol', ...extra }));
      try {
        const refused = await client.signOut({ wipe: true }).then(
          () => null,
          (e: unknown) => e,
        );
        expect(String(refused)).to.match(/deleteDatabase|remove/);
        await client.local.create('ideas', { text: 'still open' });
        expect(await new AsyncStorageCheckpointStore(storage).scope('carol').getDeviceId()).to.equal(client.deviceId);
      } finally {
        await client.close();
      }
    }
  });
});
