import { expect } from 'chai';
import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConflictEvent } from '../../mobile/src/local-database';
import { WrongUserError } from '../../mobile/src/identity';
import { ManualTimers } from '../fakes/manual-timers';
import { MemoryAsyncStorage } from '../fakes/memory-async-storage';
import { MemoryKeyStore } from '../fakes/memory-key-store';
import { describeEachDatabase } from '../support/databases';
import { deleteDeviceFile, deviceRows, newDeviceFile, useDevices, type Device } from '../support/device';
import { storedRows } from '../support/server';

/**
 * Accounts on one phone, and the device identity bound to its database (docs/mobile.md,
 * "Sign-in and sign-out"): real clients on OP-SQLite's Node build (real SQLite files) against the
 * real server over HTTP, with real signed tokens. A "phone" is its AsyncStorage (a Map that
 * outlives the clients), its key store, and one database file per user.
 */
describeEachDatabase('mobile client: accounts and device identity', (ctx) => {
  const { device, server } = useDevices(ctx);
  const serverIds = async (table: string, user: string) => (await storedRows(ctx.database.db, table, user)).map((r: any) => r.id as string).sort();
  const localIds = async (d: Device, table: string) => (await deviceRows(d, table)).map((r) => r['id'] as string).sort();

  async function syncOk(d: Device) {
    const r = await d.client.sync();
    if (r.isErr()) throw new Error(`sync failed: ${JSON.stringify(r.error)}`);
    return r.value;
  }

  it('A writes offline and signs out keeping her data; B signs in on the same phone and gets all and only his rows from the start; A comes back and her pending rows reach her account', async () => {
    const [a, b] = ['acct-a', 'acct-b'];
    // B already has rows on the server, from his tablet.
    const tablet = await device(b);
    for (let i = 0; i < 25; i++) await tablet.client.local.create('ideas', { id: `b-${String(i).padStart(2, '0')}`, text: `B's idea ${i}` });
    await syncOk(tablet);

    const phone = { storage: new MemoryAsyncStorage(), keyStore: new MemoryKeyStore() };
    const fileA = newDeviceFile(a);
    const onPhone = (user: string, file: { dir: string; name: string }) =>
      device(user, { signedIn: true, file, storage: phone.storage, extra: { keyStore: phone.keyStore, pullLimit: 10 } });

    const asA = await onPhone(a, fileA);
    await asA.client.local.create('ideas', { id: 'a-synced', text: 'A, synced' });
    await syncOk(asA);
    asA.network.setOnline(false);
    await asA.client.local.create('ideas', { id: 'a-offline-1', text: 'A, written offline' });
    await asA.client.local.create('captures', { id: 'a-offline-2', type: 'text', raw_content: 'A, offline capture' });
    expect((await asA.client.sync()).isErr()).to.equal(true);
    expect(asA.client.getStatus().pending).to.equal(2);
    const deviceOfA = asA.client.deviceId;
    await asA.client.signOut(); // keep: the default

    const asB = await onPhone(b, newDeviceFile(b));
    expect(asB.client.deviceId, "B's device id is his own").to.not.equal(deviceOfA);
    expect(await asB.client.knownMark(), 'B starts with empty cursors').to.equal(null);
    await syncOk(asB);
    // B's pull started from the start: every one of his 25 rows came down, in pages of 10.
    expect(asB.requests.filter((r) => r.kind === 'pull').reduce((n, r) => n + (r.records ?? 0), 0)).to.equal(25);
    expect(await localIds(asB, 'ideas')).to.deep.equal(await serverIds('ideas', b));
    expect(await localIds(asB, 'ideas')).to.have.length(25);
    expect(await localIds(asB, 'captures')).to.deep.equal([]);
    // Nothing of A's went out under B's token, nor is shown to B.
    expect(asB.requests.filter((r) => r.kind === 'push')).to.deep.equal([]);
    expect((await serverIds('ideas', b)).filter((id) => id.startsWith('a-'))).to.deep.equal([]);
    expect(await serverIds('captures', b)).to.deep.equal([]);
    await asB.client.signOut();

    const backA = await onPhone(a, fileA);
    expect(backA.client.deviceId, 'A comes back as the same device').to.equal(deviceOfA);
    expect(backA.client.getStatus().pending).to.equal(2);
    await syncOk(backA);
    expect(await serverIds('ideas', a)).to.deep.equal(['a-offline-1', 'a-synced']);
    expect(await serverIds('captures', a)).to.deep.equal(['a-offline-2']);
    expect(backA.client.getStatus().pending).to.equal(0);
    expect(await localIds(backA, 'ideas')).to.deep.equal(['a-offline-1', 'a-synced']);
    // A's return pulled incrementally: her cursors were kept, so nothing came down again.
    expect(backA.requests.filter((r) => r.kind === 'pull').reduce((n, r) => n + (r.records ?? 0), 0)).to.equal(0);
  });

  it("refuses to send anything under another user's token (bad input: B's token, a token with no sub, not a JWT): WRONG_USER, not retryable, nothing on either account", async () => {
    let token = server().token('acct-d');
    const timers = new ManualTimers();
    const d = await device('acct-c', { signedIn: true, token: () => token, timers });
    await d.client.local.create('ideas', { id: 'c-1', text: "C's private idea" });
    for (const bad of [server().token('acct-d'), 'eyJhbGciOiJIUzI1NiJ9.eyJuYW1lIjoieCJ9.c2ln', 'not-a-token']) {
      token = bad;
      const r = await d.client.sync();
      expect(r.isErr(), bad).to.equal(true);
      expect(r._unsafeUnwrapErr(), bad).to.include({ kind: 'AUTH_ERROR', code: 'WRONG_USER', retryable: false });
      expect(r._unsafeUnwrapErr().message, bad).to.match(/acct-c/);
    }
    expect(d.client.getStatus()).to.deep.include({ state: 'unauthenticated', pending: 1 });
    expect(d.client.getStatus().lastError?.code).to.equal('WRONG_USER');
    // Started, the client runs its launch sync (a call meanwhile waits for it, then runs once
    // more), fails the same way and schedules no retry: only the poll waits.
    d.client.start();
    await d.client.sync();
    expect(timers.waiting()).to.deep.equal([15 * 60 * 1000]);
    d.client.stop();
    expect(await serverIds('ideas', 'acct-d')).to.deep.equal([]);
    expect(await serverIds('ideas', 'acct-c')).to.deep.equal([]);
    // With the right token the same client syncs.
    token = server().token('acct-c');
    await syncOk(d);
    expect(await serverIds('ideas', 'acct-c')).to.deep.equal(['c-1']);
  });

  it("refuses to open a database that belongs to another user (WrongUserError from createSyncClient); its owner's data is untouched", async () => {
    const file = newDeviceFile('acct-e');
    const storage = new MemoryAsyncStorage();
    const e = await device('acct-e', { signedIn: true, file, storage });
    await e.client.local.create('ideas', { id: 'e-1', text: "E's" });
    await e.client.signOut();
    const refused = await device('acct-f', { signedIn: true, file, storage }).then(
      () => null,
      (x: unknown) => x,
    );
    expect(refused).to.be.instanceOf(WrongUserError);
    expect(String((refused as Error).message)).to.match(/belongs to user "acct-e"/);
    expect([...storage.items.keys()].filter((k) => k.endsWith('@acct-f')), 'nothing kept for the refused user').to.deep.equal([]);
    const back = await device('acct-e', { signedIn: true, file, storage });
    expect(back.client.deviceId).to.equal(e.client.deviceId);
    expect(await localIds(back, 'ideas')).to.deep.equal(['e-1']);
    expect(back.client.getStatus().pending).to.equal(1);
  });

  it('a database file deleted while AsyncStorage is kept gets a new device id and empty cursors: the next sync is a full first sync, nothing missed', async () => {
    const user = 'ident-1';
    const other = await device(user);
    for (let i = 0; i < 12; i++) await other.client.local.create('ideas', { id: `old-${String(i).padStart(2, '0')}`, text: `older ${i}` });
    await syncOk(other);
    const storage = new MemoryAsyncStorage();
    const file = newDeviceFile(user);
    const first = await device(user, { signedIn: true, file, storage, extra: { pullLimit: 5 } });
    await first.client.local.create('ideas', { id: 'mine', text: 'pushed from this phone' });
    await syncOk(first);
    expect(await localIds(first, 'ideas')).to.have.length(13);
    const before = first.client.deviceId;
    await first.client.close();
    deleteDeviceFile(file); // AsyncStorage (with this user's cursors and device id) is kept

    const recreated = await device(user, { signedIn: true, file, storage, extra: { pullLimit: 5 } });
    expect(recreated.client.deviceId).to.not.equal(before);
    expect(await recreated.client.knownMark(), 'no cursor survives its database').to.equal(null);
    await syncOk(recreated);
    // Everything, the older rows and the ones this phone pushed itself, came back.
    expect(await localIds(recreated, 'ideas')).to.deep.equal(await serverIds('ideas', user));
    expect(await localIds(recreated, 'ideas')).to.have.length(13);
    expect(recreated.requests.filter((r) => r.kind === 'pull').length, 'in pages of 5').to.be.greaterThan(3);
  });

  it("two phones restored from one backup (the database file and AsyncStorage copied, not the key store) see each other's writes, and their edits of one row meet as a conflict", async () => {
    const user = 'ident-2';
    const fileA = newDeviceFile(user);
    const storageA = new MemoryAsyncStorage();
    const keysA = new MemoryKeyStore();
    const phone = (file: { dir: string; name: string }, storage: MemoryAsyncStorage, keyStore: MemoryKeyStore) => device(user, { signedIn: true, file, storage, extra: { keyStore } });

    const original = await phone(fileA, storageA, keysA);
    await original.client.local.create('ideas', { id: 'shared', text: 'before the backup' });
    await syncOk(original);
    const deviceA = original.client.deviceId;
    await original.client.close();

    // The backup, restored on a second phone: the database file and AsyncStorage as they were;
    // the key store's entries are this-device-only, so the new phone's starts empty.
    const fileB = { dir: mkdtempSync(join(tmpdir(), 'sync-device-')), name: fileA.name };
    for (const f of readdirSync(fileA.dir)) copyFileSync(join(fileA.dir, f), join(fileB.dir, f));
    const storageB = new MemoryAsyncStorage();
    for (const [k, v] of storageA.items) storageB.items.set(k, v);

    const a = await phone(fileA, storageA, keysA);
    const b = await phone(fileB, storageB, new MemoryKeyStore());
    expect(a.client.deviceId, 'the original phone keeps its device id').to.equal(deviceA);
    expect(b.client.deviceId, 'the restored phone is a new device').to.not.equal(deviceA);

    const conflicts: ConflictEvent[] = [];
    for (const d of [a, b]) d.client.onConflict((events) => conflicts.push(...events));
    await a.client.local.create('ideas', { id: 'from-a', text: 'written on phone A' });
    await b.client.local.create('ideas', { id: 'from-b', text: 'written on phone B' });
    await a.client.local.update('ideas', 'shared', { text: 'edited on A' });
    await b.client.local.update('ideas', 'shared', { text: 'edited on B' });
    await syncOk(a);
    await syncOk(b);
    await syncOk(a);

    for (const d of [a, b]) expect(await localIds(d, 'ideas')).to.deep.equal(['from-a', 'from-b', 'shared']);
    expect(await deviceRows(a, 'ideas')).to.deep.equal(await deviceRows(b, 'ideas'));
    expect(await serverIds('ideas', user)).to.deep.equal(['from-a', 'from-b', 'shared']);
    // B's edit met A's: not silently overwritten, but resolved as a conflict both can hear of.
    expect(conflicts.map((c) => c.id)).to.include('shared');
  });
});
