import { useState } from 'react';
import { FlatList, Pressable, StyleSheet, Text, TextInput, View } from 'react-native';
import { useQuery, useSyncClient } from '@note-sync/mobile/react';

// One object for every render, so that a hook comparing its options by identity does not query
// again on each render.
const NEWEST_FIRST = { orderBy: 'created_at', descending: true } as const;

/**
 * The captures, newest first, with add / edit / delete. Every write goes to the local database
 * through the client (so it works offline); the client pushes it on its next sync.
 */
export function CaptureList() {
  const client = useSyncClient();
  const { records, loading, error } = useQuery('captures', NEWEST_FIRST);
  const [draft, setDraft] = useState('');
  const [editing, setEditing] = useState<{ id: string; text: string } | null>(null);
  const [writeError, setWriteError] = useState<string | null>(null);

  const run = (write: () => Promise<unknown>) =>
    write().then(
      () => setWriteError(null),
      (e: unknown) => setWriteError(e instanceof Error ? e.message : String(e)),
    );

  const add = () => {
    const text = draft.trim();
    if (!text) return;
    void run(() => client.local.create('captures', { type: 'text', raw_content: text })).then(() => setDraft(''));
  };
  const save = () => {
    if (!editing) return;
    const { id, text } = editing;
    void run(() => client.local.update('captures', id, { raw_content: text })).then(() => setEditing(null));
  };

  return (
    <View style={styles.root}>
      <View style={styles.row}>
        <TextInput style={styles.input} value={draft} onChangeText={setDraft} placeholder="Capture a thought…" onSubmitEditing={add} returnKeyType="done" />
        <Pressable onPress={add} accessibilityRole="button"><Text style={styles.action}>Add</Text></Pressable>
      </View>
      {writeError && <Text style={styles.error}>{writeError}</Text>}
      {error ? <Text style={styles.error}>Could not read captures: {String(error)}</Text> : null}
      {loading && records.length === 0 ? <Text style={styles.muted}>Loading…</Text> : null}
      <FlatList
        data={records}
        keyExtractor={(r) => String(r.id)}
        ListEmptyComponent={loading ? null : <Text style={styles.muted}>No captures yet.</Text>}
        renderItem={({ item }) => {
          const id = String(item.id);
          if (editing?.id === id) {
            return (
              <View style={styles.row}>
                <TextInput style={styles.input} value={editing.text} onChangeText={(text) => setEditing({ id, text })} autoFocus onSubmitEditing={save} />
                <Pressable onPress={save} accessibilityRole="button"><Text style={styles.action}>Save</Text></Pressable>
                <Pressable onPress={() => setEditing(null)} accessibilityRole="button"><Text style={styles.muted}>Cancel</Text></Pressable>
              </View>
            );
          }
          return (
            <View style={styles.row}>
              <Pressable style={styles.grow} onPress={() => setEditing({ id, text: String(item.raw_content ?? '') })}>
                <Text>{String(item.raw_content ?? '')}</Text>
                <Text style={styles.muted}>{String(item.state ?? '')}</Text>
              </Pressable>
              <Pressable onPress={() => void run(() => client.local.delete('captures', id))} accessibilityRole="button">
                <Text style={styles.danger}>Delete</Text>
              </Pressable>
            </View>
          );
        }}
      />
    </View>
  );
}

const styles = StyleSheet.create({
  root: { flex: 1 },
  row: { flexDirection: 'row', alignItems: 'center', padding: 10, gap: 12, borderBottomWidth: StyleSheet.hairlineWidth, borderColor: '#ddd' },
  grow: { flex: 1 },
  input: { flex: 1, borderWidth: StyleSheet.hairlineWidth, borderColor: '#aaa', borderRadius: 6, paddingHorizontal: 8, paddingVertical: 6 },
  action: { color: '#1a73e8', fontWeight: '600' },
  danger: { color: '#b00020' },
  error: { color: '#b00020', padding: 10 },
  muted: { color: '#777' },
});
