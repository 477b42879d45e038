import { Pressable, StyleSheet, Text, View } from 'react-native';
import type { SyncStatus } from '@note-sync/mobile';
import { useSyncClient, useSyncStatus } from '@note-sync/mobile/react';

/** One line: offline / syncing / error, the pending count and when the last sync finished. */
export function describeStatus(s: SyncStatus, now = Date.now()): string {
  const pending = s.pending === 1 ? '1 change pending' : `${s.pending} changes pending`;
  const last = s.lastSyncedAt === null ? 'never synced' : `last synced ${ago(now - s.lastSyncedAt)}`;
  switch (s.state) {
    case 'offline':
      return `Offline · ${pending}`;
    case 'syncing':
      return `Syncing… · ${pending}`;
    case 'error':
      return `Sync failed: ${s.lastError?.message ?? 'unknown error'}${s.lastError?.retryable ? ' (retrying)' : ''} · ${pending}`;
    default:
      return `${pending} · ${last}`;
  }
}

function ago(ms: number): string {
  if (ms < 60_000) return 'just now';
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ago`;
  return `${Math.floor(ms / 3_600_000)} h ago`;
}

export function SyncStatusBar() {
  const client = useSyncClient();
  const status = useSyncStatus();
  return (
    <View style={[styles.bar, status.state === 'error' && styles.error, status.state === 'offline' && styles.offline]}>
      <Text style={styles.text} accessibilityLiveRegion="polite">{describeStatus(status)}</Text>
      <Pressable onPress={() => void client.sync()} disabled={status.state === 'syncing'} accessibilityRole="button">
        <Text style={styles.action}>Sync now</Text>
      </Pressable>
    </View>
  );
}

const styles = StyleSheet.create({
  bar: { flexDirection: 'row', alignItems: 'center', padding: 10, backgroundColor: '#eef3fd' },
  error: { backgroundColor: '#fdecea' },
  offline: { backgroundColor: '#f1f1f1' },
  text: { flex: 1 },
  action: { color: '#1a73e8', fontWeight: '600', marginLeft: 12 },
});
