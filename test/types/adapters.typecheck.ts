/**
 * The adapters take the real React Native modules as they are typed (checked by `npm run
 * typecheck`, which includes this file; it is never run). The modules are devDependencies for
 * their types only: nothing here imports react-native.
 */
import AsyncStorage from '@react-native-async-storage/async-storage';
import NetInfo from '@react-native-community/netinfo';
import * as SecureStore from 'expo-secure-store';
import * as Keychain from 'react-native-keychain';
import { AsyncStorageCheckpointStore, ExpoSecureStoreKeyStore, KeychainKeyStore, NetInfoNetworkMonitor } from '../../mobile/src';

export const keyStore = new KeychainKeyStore(Keychain, Keychain.ACCESSIBLE.AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY);
export const keyStoreDefault = new KeychainKeyStore(Keychain);
export const secureStore = new ExpoSecureStoreKeyStore(SecureStore);
export const secureStoreWhenUnlocked = new ExpoSecureStoreKeyStore(SecureStore, SecureStore.WHEN_UNLOCKED_THIS_DEVICE_ONLY);
export const checkpoints = new AsyncStorageCheckpointStore(AsyncStorage);
export const network = new NetInfoNetworkMonitor(NetInfo);
