import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExpoSecureStoreKeyStore, secureStoreKey } from '../../mobile/src/adapters/expo-secure-store-key-store';
import { KeychainKeyStore } from '../../mobile/src/adapters/keychain-key-store';
import { FakeKeychain } from '../fakes/fake-keychain';
import { FakeSecureStore } from '../fakes/fake-secure-store';
import { FileKeyStore } from '../fakes/file-key-store';
import { MemoryKeyStore } from '../fakes/memory-key-store';
import { runKeyStoreContract } from './key-store.contract';

runKeyStoreContract('MemoryKeyStore (fake)', () => {
  const store = new MemoryKeyStore();
  return { store, restart: () => store };
});

describe('a key store in a file', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  runKeyStoreContract('FileKeyStore (fake, for killed processes)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'file-key-store-'));
    dirs.push(dir);
    const file = join(dir, 'keys.json');
    return { store: new FileKeyStore(file), restart: () => new FileKeyStore(file) };
  });
});

runKeyStoreContract('KeychainKeyStore over the fake keychain', () => {
  const chain = new FakeKeychain();
  return { store: new KeychainKeyStore(chain), restart: () => new KeychainKeyStore(chain) };
});

runKeyStoreContract('ExpoSecureStoreKeyStore over the fake SecureStore (its key rules enforced)', () => {
  const secureStore = new FakeSecureStore();
  return { store: new ExpoSecureStoreKeyStore(secureStore), restart: () => new ExpoSecureStoreKeyStore(secureStore) };
});

describe('keys on the device: accessibility', () => {
  it('KeychainKeyStore writes with AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY by default, and with the one given otherwise', async () => {
    const chain = new FakeKeychain();
    await new KeychainKeyStore(chain).set('k', 'v');
    await new KeychainKeyStore(chain, 'AccessibleWhenUnlockedThisDeviceOnly').set('k2', 'v2');
    // react-native-keychain's ACCESSIBLE.AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY
    expect(chain.writes).to.deep.equal([
      { service: 'k', accessible: 'AccessibleAfterFirstUnlockThisDeviceOnly' },
      { service: 'k2', accessible: 'AccessibleWhenUnlockedThisDeviceOnly' },
    ]);
  });

  it('ExpoSecureStoreKeyStore passes keychainAccessible: the module\'s AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY by default, on every call', async () => {
    const secureStore = new FakeSecureStore();
    const store = new ExpoSecureStoreKeyStore(secureStore);
    await store.set('note-sync.database-key', 'v');
    expect(await store.get('note-sync.database-key')).to.equal('v');
    expect(secureStore.calls).to.deep.equal([
      { op: 'set', key: 'note-sync.database-key', options: { keychainAccessible: secureStore.AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY } },
      { op: 'get', key: 'note-sync.database-key', options: { keychainAccessible: secureStore.AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY } },
    ]);
    await new ExpoSecureStoreKeyStore(secureStore, 6).set('other', 'v');
    expect(secureStore.items.get('other')).to.deep.equal({ value: 'v', keychainAccessible: 6 });
  });
});

describe('SecureStore key names', () => {
  it('keeps plain names as they are and escapes every other character into [A-Za-z0-9._-]', () => {
    expect(secureStoreKey('note-sync.database-key')).to.equal('note-sync.database-key');
    expect(secureStoreKey('note-sync.database-key.next')).to.equal('note-sync.database-key.next');
    expect(secureStoreKey('a|b')).to.equal('a_007cb');
    expect(secureStoreKey('a_b')).to.equal('a_005fb');
    for (const name of ['auth0|42', 'ключ', 'a b/c', '😀', '_']) expect(secureStoreKey(name)).to.match(/^[\w.-]+$/);
  });

  it('refuses an empty name with a clear error (SecureStore would refuse its empty key)', () => {
    expect(() => secureStoreKey('')).to.throw(/must not be empty/);
  });

  it('is needed: the fake refuses, as SecureStore does, a key outside its characters', async () => {
    const error = await new FakeSecureStore().setItemAsync('a|b', 'v').then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as Error).message).to.match(/Invalid key provided to SecureStore/);
  });
});
