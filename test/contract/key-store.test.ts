import { KeychainKeyStore, type KeychainLike } from '../../mobile/src/adapters/keychain-key-store';
import { MemoryKeyStore } from '../fakes/memory-key-store';
import { runKeyStoreContract } from './key-store.contract';

/** react-native-keychain's generic-password API over a Map (the device's keychain survives restarts). */
function keychain(): KeychainLike {
  const items = new Map<string, string>();
  return {
    getGenericPassword: async ({ service }) => (items.has(service) ? { password: items.get(service)! } : false),
    setGenericPassword: async (_user, password, { service }) => void items.set(service, password),
    resetGenericPassword: async ({ service }) => items.delete(service),
  };
}

runKeyStoreContract('MemoryKeyStore (fake)', () => {
  const store = new MemoryKeyStore();
  return { store, restart: () => store };
});

runKeyStoreContract('KeychainKeyStore', () => {
  const chain = keychain();
  return { store: new KeychainKeyStore(chain), restart: () => new KeychainKeyStore(chain) };
});
