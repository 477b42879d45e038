/**
 * What a pushed record does to the server's row (spec §4.3), as one pure function.
 *
 * A pushed update or delete conflicts when the server's row changed after the client's last pull
 * (`last_modified_at > last_pulled_at`) by someone other than the pushing device. Update against
 * update merges column by column: among the client's changed columns (`_changed`, else every
 * pushed column) the table's server-owned columns (`serverOwned` in the schema) keep the server's
 * value and the rest take the client's. A delete on either side wins. A deleted row stays deleted:
 * an update never brings a tombstone back.
 */
import type { PushedRecord } from './change-set';
import { columnNames, columnSpec, type TableSpec, type WireRecord } from './schema';

export type ConflictType = 'update_update' | 'update_delete' | 'delete_update';
export type ResolutionStrategy = 'per_column' | 'delete_wins';

export interface Conflict {
  readonly table: string;
  readonly id: string;
  readonly type: ConflictType;
  readonly resolution: ResolutionStrategy;
  /** Columns the client changed whose value was applied. */
  readonly clientColumns: readonly string[];
  /** Columns the client changed whose value the server kept. */
  readonly serverColumns: readonly string[];
}

/** The server's current version of a row, as the merge needs it. */
export interface ServerRow {
  readonly values: WireRecord;
  readonly deleted: boolean;
  readonly lastModifiedAt: number;
  /** True when the pushing device wrote this version itself (it is not someone else's change). */
  readonly writtenByPusher: boolean;
}

export type PushedChange = { readonly kind: 'upsert'; readonly record: PushedRecord } | { readonly kind: 'delete'; readonly id: string };

export type Decision =
  /** New row: the caller completes it with defaults (and rejects it when a required column is missing). */
  | { readonly action: 'create'; readonly record: PushedRecord }
  /** Write these values over the row. `merged` rows are not the device's own version. */
  | { readonly action: 'update'; readonly values: WireRecord; readonly merged: boolean; readonly conflict?: Conflict }
  | { readonly action: 'delete'; readonly merged: boolean; readonly conflict?: Conflict }
  /** The row stays deleted but is written again, so that every client (the pusher too) pulls the delete. */
  | { readonly action: 'restamp_delete'; readonly conflict: Conflict }
  | { readonly action: 'none' };

function conflicts(row: ServerRow, lastPulledAt: number | null): boolean {
  return !row.writtenByPusher && row.lastModifiedAt > (lastPulledAt ?? 0);
}

/** The columns a pushed record counts as changed by the client. */
export function clientChangedColumns(table: TableSpec, record: PushedRecord): string[] {
  const pushed = columnNames(table).filter((c) => Object.hasOwn(record.values, c));
  if (record.changed === null) return pushed;
  const named = new Set(record.changed);
  return pushed.filter((c) => named.has(c));
}

/** Merges an update into the server's row, column by column, per the table's policy. */
export function mergeColumns(table: TableSpec, record: PushedRecord, server: WireRecord): { values: WireRecord; clientColumns: string[]; serverColumns: string[] } {
  const values: WireRecord = { ...server };
  const clientColumns: string[] = [];
  const serverColumns: string[] = [];
  for (const column of clientChangedColumns(table, record)) {
    if (columnSpec(table, column)?.serverOwned) serverColumns.push(column);
    else {
      values[column] = record.values[column]!;
      clientColumns.push(column);
    }
  }
  return { values, clientColumns, serverColumns };
}

export function decide(table: TableSpec, change: PushedChange, row: ServerRow | undefined, lastPulledAt: number | null): Decision {
  if (change.kind === 'delete') {
    if (!row || row.deleted) return { action: 'none' };
    if (!conflicts(row, lastPulledAt)) return { action: 'delete', merged: false };
    return {
      action: 'delete',
      merged: true,
      conflict: { table: table.name, id: change.id, type: 'delete_update', resolution: 'delete_wins', clientColumns: [], serverColumns: [] },
    };
  }
  const { record } = change;
  if (!row) return { action: 'create', record };
  if (row.deleted) {
    return {
      action: 'restamp_delete',
      conflict: {
        table: table.name,
        id: record.id,
        type: 'update_delete',
        resolution: 'delete_wins',
        clientColumns: [],
        serverColumns: clientChangedColumns(table, record),
      },
    };
  }
  if (!conflicts(row, lastPulledAt)) {
    return { action: 'update', values: { ...row.values, ...record.values }, merged: false };
  }
  const merge = mergeColumns(table, record, row.values);
  return {
    action: 'update',
    values: merge.values,
    merged: true,
    conflict: {
      table: table.name,
      id: record.id,
      type: 'update_update',
      resolution: 'per_column',
      clientColumns: merge.clientColumns,
      serverColumns: merge.serverColumns,
    },
  };
}
