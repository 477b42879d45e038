/**
 * React bindings (`@note-sync/mobile/react`): a provider for the app's SyncClient and hooks that
 * re-render on local writes and on what a sync pulls, built on `useSyncExternalStore`.
 *
 *   <SyncProvider client={client}>…</SyncProvider>
 *   const status = useSyncStatus();
 *   const { records, loading, error } = useQuery('captures', { orderBy: 'created_at', descending: true });
 *   const { record } = useRecord('captures', id);
 *
 * Written without JSX so that the package needs no JSX transform.
 */
import { createContext, createElement, useCallback, useContext, useMemo, useSyncExternalStore, type ReactNode } from 'react';
import type { QueryOptions } from '../local-database';
import type { SyncClient, SyncStatus } from '../sync-client';
import { QueryStore, RecordStore, type QueryResult, type RecordResult } from './stores';

export type { QueryResult, RecordResult } from './stores';

const SyncContext = createContext<SyncClient | null>(null);
SyncContext.displayName = 'SyncContext';

export interface SyncProviderProps {
  readonly client: SyncClient;
  readonly children?: ReactNode;
}

/** Makes `client` the one the hooks below it use. */
export function SyncProvider({ client, children }: SyncProviderProps): ReactNode {
  return createElement(SyncContext.Provider, { value: client }, children);
}

/** The SyncClient of the nearest SyncProvider (throws without one: a wiring mistake, not a state). */
export function useSyncClient(): SyncClient {
  const client = useContext(SyncContext);
  if (client === null) throw new Error('useSyncClient: no <SyncProvider client={…}> above this component.');
  return client;
}

/** The client's status (state, pending, quarantined, last synced, last error…); re-renders when it changes. */
export function useSyncStatus(): SyncStatus {
  const client = useSyncClient();
  const subscribe = useCallback((onChange: () => void) => client.subscribe(() => onChange()), [client]);
  const get = useCallback(() => client.getStatus(), [client]);
  return useSyncExternalStore(subscribe, get, get);
}

/**
 * The live rows of `table` matching `options` (LocalDatabase.query's: where, orderBy, descending,
 * limit). Re-reads when a local write or a sync changes the table; re-renders only when the rows
 * differ. `records` keeps its identity while they do not, and is [] while `loading`.
 */
export function useQuery(table: string, options: QueryOptions = {}): QueryResult {
  const local = useSyncClient().local;
  // Options are compared by value: an inline object literal does not make a new query each render.
  const key = JSON.stringify([options.where ?? null, options.orderBy ?? null, options.descending ?? false, options.limit ?? null]);
  const store = useMemo(() => new QueryStore(local, table, options), [local, table, key]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

const NO_RECORD: RecordResult = Object.freeze({ record: null, loading: false, error: null });
const noSubscription = () => () => undefined;
const noRecord = () => NO_RECORD;

/**
 * The live row `id` of `table` (null when there is none, or it is deleted); re-renders when a
 * local write or a sync changes that row, not for other rows. A null or undefined `id` gives
 * `{ record: null, loading: false }` (a screen with nothing selected yet).
 */
export function useRecord(table: string, id: string | null | undefined): RecordResult {
  const local = useSyncClient().local;
  const store = useMemo(() => (id === null || id === undefined ? null : new RecordStore(local, table, id)), [local, table, id]);
  return useSyncExternalStore(store ? store.subscribe : noSubscription, store ? store.getSnapshot : noRecord, store ? store.getSnapshot : noRecord);
}
