/**
 * A push batch sent and not yet known to be applied: its retry, even after the app was killed,
 * sends the same body with the same push_id, so the server answers it from its receipt instead
 * of applying it a second time.
 */
export interface PushAttempt {
  /** A fingerprint of the batch's changes: a different batch is a new attempt. */
  readonly key: string;
  readonly pushId: string;
  readonly lastPulledAt: number | null;
}

/**
 * Where the client keeps its sync cursors, its device id and its unanswered pushes per table
 * (spec §5: AsyncStorage key `sync_last_pulled_${table}`): one per slot, as the engine keeps up to
 * PUSHES_IN_FLIGHT batches in flight; and the instance id of the local database they were
 * written for (docs/mobile.md, "Sign-in and sign-out"). Contract
 * (test/contract/checkpoint-store.contract.ts): a value set is read back after a restart; an
 * unknown table or slot reads null; slots are apart; `set` resolves only once stored; null
 * forgets; stores of different scopes share nothing, with each other nor with the unscoped one.
 */
export interface CheckpointStore {
  getLastPulledAt(table: string): Promise<number | null>;
  setLastPulledAt(table: string, timestamp: number | null): Promise<void>;
  getDeviceId(): Promise<string | null>;
  setDeviceId(id: string | null): Promise<void>;
  /** The instance id of the local database these checkpoints belong to (null: none recorded). */
  getDatabaseId(): Promise<string | null>;
  setDatabaseId(id: string | null): Promise<void>;
  /** The same storage, apart under `name` (one user's checkpoints): its keys are no other scope's. */
  scope(name: string): CheckpointStore;
  /** Slot 0 unless given (a whole number below 16). */
  getPushAttempt(table: string, slot?: number): Promise<PushAttempt | null>;
  setPushAttempt(table: string, attempt: PushAttempt | null, slot?: number): Promise<void>;
}
