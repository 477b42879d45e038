import { useEffect, useState, type ReactNode } from 'react';
import { ActivityIndicator, Pressable, SafeAreaView, StyleSheet, Text, View } from 'react-native';
import type { SyncClient } from '@note-sync/mobile';
import { SyncProvider } from '@note-sync/mobile/react';
import { init } from './sync';
import { SyncStatusBar } from './SyncStatusBar';
import { ConflictNotice } from './ConflictNotice';
import { CaptureList } from './CaptureList';
import { QuarantineList } from './QuarantineList';

export default function App() {
  const [client, setClient] = useState<SyncClient | null>(null);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    // The client is created here, in an effect, and closed when the app unmounts.
    let created: SyncClient | null = null;
    let unmounted = false;
    init().then(
      (c) => {
        if (unmounted) void c.close();
        else setClient((created = c));
      },
      (e: unknown) => setFailure(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      unmounted = true;
      void created?.close();
    };
  }, []);

  if (failure) return <Centered><Text style={styles.error}>Could not open the local database: {failure}</Text></Centered>;
  if (!client) return <Centered><ActivityIndicator /></Centered>;
  return (
    <SyncProvider client={client}>
      <Screens />
    </SyncProvider>
  );
}

function Screens() {
  const [tab, setTab] = useState<'captures' | 'quarantine'>('captures');
  return (
    <SafeAreaView style={styles.root}>
      <SyncStatusBar />
      <ConflictNotice />
      <View style={styles.tabs}>
        <Tab label="Captures" active={tab === 'captures'} onPress={() => setTab('captures')} />
        <Tab label="Set aside" active={tab === 'quarantine'} onPress={() => setTab('quarantine')} />
      </View>
      {tab === 'captures' ? <CaptureList /> : <QuarantineList />}
    </SafeAreaView>
  );
}

function Tab(props: { label: string; active: boolean; onPress: () => void }) {
  return (
    <Pressable onPress={props.onPress} style={[styles.tab, props.active && styles.tabActive]} accessibilityRole="tab">
      <Text style={props.active ? styles.tabTextActive : undefined}>{props.label}</Text>
    </Pressable>
  );
}

function Centered(props: { children: ReactNode }) {
  return <View style={styles.centered}>{props.children}</View>;
}

const styles = StyleSheet.create({
  root: { flex: 1, backgroundColor: '#fff' },
  centered: { flex: 1, alignItems: 'center', justifyContent: 'center', padding: 24 },
  error: { color: '#b00020' },
  tabs: { flexDirection: 'row', borderBottomWidth: StyleSheet.hairlineWidth, borderColor: '#ccc' },
  tab: { flex: 1, padding: 12, alignItems: 'center' },
  tabActive: { borderBottomWidth: 2, borderColor: '#1a73e8' },
  tabTextActive: { fontWeight: '600', color: '#1a73e8' },
});
