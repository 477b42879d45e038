import { useCallback, useEffect, useState } from 'react';
import { FlatList, Pressable, StyleSheet, Text, View } from 'react-native';
import type { QuarantinedRecord } from '@note-sync/mobile';
import { useSyncClient, useSyncStatus } from '@note-sync/mobile/react';

/**
 * Records the server refused (quarantined: set aside, not pushed again). Retry pushes one again on
 * the next sync; discard drops its local changes and takes the server's version back.
 */
export function QuarantineList() {
  const client = useSyncClient();
  const { quarantined } = useSyncStatus(); // the count changes after each sync and each retry/discard
  const [items, setItems] = useState<QuarantinedRecord[]>([]);
  const [failure, setFailure] = useState<string | null>(null);

  const reload = useCallback(() => {
    client.listQuarantined().then(setItems, (e: unknown) => setFailure(String(e)));
  }, [client]);
  useEffect(reload, [reload, quarantined]);

  const act = (action: () => Promise<void>) =>
    action().then(
      () => { setFailure(null); reload(); },
      (e: unknown) => setFailure(e instanceof Error ? e.message : String(e)),
    );

  return (
    <View style={styles.root}>
      {failure && <Text style={styles.error}>{failure}</Text>}
      <FlatList
        data={items}
        keyExtractor={(q) => `${q.table}:${q.id}`}
        ListEmptyComponent={<Text style={styles.muted}>Nothing set aside: every change was accepted.</Text>}
        renderItem={({ item }) => (
          <View style={styles.row}>
            <View style={styles.grow}>
              <Text>{item.table} {item.id.slice(0, 8)}</Text>
              <Text style={styles.muted}>{item.reason} · {new Date(item.quarantinedAt).toLocaleString()}</Text>
            </View>
            <Pressable onPress={() => void act(() => client.retryQuarantined(item.table, item.id))} accessibilityRole="button">
              <Text style={styles.action}>Retry</Text>
            </Pressable>
            <Pressable onPress={() => void act(() => client.discardQuarantined(item.table, item.id))} accessibilityRole="button">
              <Text style={styles.danger}>Discard</Text>
            </Pressable>
          </View>
        )}
      />
    </View>
  );
}

const styles = StyleSheet.create({
  root: { flex: 1 },
  row: { flexDirection: 'row', alignItems: 'center', padding: 10, gap: 12, borderBottomWidth: StyleSheet.hairlineWidth, borderColor: '#ddd' },
  grow: { flex: 1 },
  action: { color: '#1a73e8', fontWeight: '600' },
  danger: { color: '#b00020' },
  error: { color: '#b00020', padding: 10 },
  muted: { color: '#777', padding: 2 },
});
