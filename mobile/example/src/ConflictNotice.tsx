import { useEffect, useState } from 'react';
import { Pressable, StyleSheet, Text, View } from 'react-native';
import type { ConflictEvent } from '@note-sync/mobile';
import { useSyncClient } from '@note-sync/mobile/react';

/** What a conflict did to the user's edit, in words. */
export function describeConflict(e: ConflictEvent): string {
  const what = `${e.table.replace(/s$/, '')} ${e.id.slice(0, 6)}`;
  const mine = e.clientColumns.length ? `your ${e.clientColumns.join(', ')} kept` : '';
  const theirs = e.serverColumns.length ? `the other device's ${e.serverColumns.join(', ')} kept` : '';
  const outcome = [mine, theirs].filter(Boolean).join('; ') || e.resolution;
  return `Edited elsewhere too: ${what} — ${outcome}.`;
}

/** Tells the user about conflicts the client resolved (client.onConflict), until dismissed. */
export function ConflictNotice() {
  const client = useSyncClient();
  const [events, setEvents] = useState<readonly ConflictEvent[]>([]);
  useEffect(() => client.onConflict((e) => setEvents((prev) => [...prev, ...e].slice(-5))), [client]);
  if (events.length === 0) return null;
  return (
    <View style={styles.box} accessibilityRole="alert">
      {events.map((e, i) => (
        <Text key={`${e.table}:${e.id}:${i}`}>{describeConflict(e)}</Text>
      ))}
      <Pressable onPress={() => setEvents([])} accessibilityRole="button">
        <Text style={styles.dismiss}>Dismiss</Text>
      </Pressable>
    </View>
  );
}

const styles = StyleSheet.create({
  box: { padding: 10, backgroundColor: '#fff8e1', gap: 4 },
  dismiss: { color: '#1a73e8', fontWeight: '600', marginTop: 4 },
});
