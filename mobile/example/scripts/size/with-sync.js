// Size baseline plus the sync package: the same one-line app, with a client created in an effect
// (with its peers: op-sqlite, AsyncStorage, NetInfo) and its status shown through the React bindings.
import 'react-native-get-random-values';
import { createElement, useEffect, useState } from 'react';
import { Text } from 'react-native';
import { registerRootComponent } from 'expo';
import { SyncProvider, useSyncStatus } from '@note-sync/mobile/react';
import { init } from '../../src/sync';

function Status() {
  const status = useSyncStatus();
  return createElement(Text, null, `notes: ${status.state}, ${status.pending} pending`);
}

function App() {
  const [client, setClient] = useState(null);
  useEffect(() => {
    init().then(setClient, () => undefined);
  }, []);
  return client ? createElement(SyncProvider, { client }, createElement(Status)) : createElement(Text, null, 'notes');
}

registerRootComponent(App);
