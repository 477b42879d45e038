/**
 * Where the client keeps its sync cursors and its device id (spec §5: AsyncStorage key
 * `sync_last_pulled_${table}`). Contract (test/contract/checkpoint-store.contract.ts): a value set
 * is read back after a restart; an unknown table reads null; `set` resolves only once stored.
 */
export interface CheckpointStore {
  getLastPulledAt(table: string): Promise<number | null>;
  setLastPulledAt(table: string, timestamp: number | null): Promise<void>;
  getDeviceId(): Promise<string | null>;
  setDeviceId(id: string): Promise<void>;
}
