/**
 * The synced tables, as data: the one source of truth for validation of pushed records, the
 * conflict merge, column encryption, the mobile DDL and the server schema check (spec §1, §4.3).
 * Changing who owns a column in a conflict is a change to this file alone. Adding a column or a
 * table also takes a migration, the OpenAPI document, the app's schemas and a rollout:
 * docs/schema.md walks it (and test/integration/schema-guide.test.ts walks docs/schema.md).
 */

export type WireValue = string | number | boolean | null;
export type WireRecord = Record<string, WireValue>;

export type ColumnType = 'text' | 'integer' | 'boolean' | 'json_array';

export interface ColumnSpec {
  readonly type: ColumnType;
  readonly nullable: boolean;
  /** Allowed values of a text column. */
  readonly enum?: readonly string[];
  /** Value given to a new row that does not carry the column; a column with neither a default nor `nullable` is required on create. */
  readonly default?: WireValue;
  /** Stored encrypted at rest on the server (spec §1). */
  readonly sensitive?: boolean;
  /** In an update/update conflict the server's value wins (spec §4.3). */
  readonly serverOwned?: boolean;
}

export interface TableSpec {
  readonly name: string;
  /** 1 syncs first (spec §1). */
  readonly priority: number;
  /** The table's own columns, without the common ones (id, created_at, last_modified_at). */
  readonly columns: Readonly<Record<string, ColumnSpec>>;
}

const text = (o: Partial<ColumnSpec> = {}): ColumnSpec => ({ type: 'text', nullable: false, ...o });
const optionalText = (o: Partial<ColumnSpec> = {}): ColumnSpec => ({ type: 'text', nullable: true, default: null, ...o });
const oneOf = (values: readonly string[], o: Partial<ColumnSpec> = {}): ColumnSpec => ({ type: 'text', nullable: false, enum: values, ...o });
const optionalInteger = (): ColumnSpec => ({ type: 'integer', nullable: true, default: null });

const TABLE_LIST: readonly TableSpec[] = [
  {
    name: 'captures',
    priority: 1,
    columns: {
      type: oneOf(['audio', 'text']),
      raw_content: text({ sensitive: true }),
      normalized_text: optionalText({ sensitive: true, serverOwned: true }),
      state: oneOf(['captured', 'processing', 'ready', 'failed'], { default: 'captured', serverOwned: true }),
      tags: { type: 'json_array', nullable: false, default: '[]' },
      project_id: optionalText(),
      duration_ms: optionalInteger(),
    },
  },
  {
    name: 'todos',
    priority: 2,
    columns: {
      thought_id: optionalText(),
      description: text({ sensitive: true }),
      state: oneOf(['todo', 'done', 'abandoned'], { default: 'todo' }),
      priority: oneOf(['low', 'medium', 'high'], { default: 'medium', serverOwned: true }),
      deadline: optionalInteger(),
      completed_at: optionalInteger(),
      project_id: optionalText(),
    },
  },
  // Derived from the notes, so as private as they are (docs/security.md): encrypted at rest too.
  { name: 'thoughts', priority: 3, columns: { capture_id: text(), summary: text({ sensitive: true }) } },
  { name: 'ideas', priority: 4, columns: { thought_id: optionalText(), text: text({ sensitive: true }) } },
  {
    name: 'projects',
    priority: 5,
    columns: {
      name: text(),
      color: optionalText(),
      archived: { type: 'boolean', nullable: false, default: false },
    },
  },
];

/** Tables in sync priority order. */
export const TABLES: readonly TableSpec[] = [...TABLE_LIST].sort((a, b) => a.priority - b.priority);
export const TABLE_NAMES: readonly string[] = TABLES.map((t) => t.name);

const BY_NAME = new Map(TABLES.map((t) => [t.name, t]));

/** Looks a table up without touching the prototype chain (`__proto__` is not a table). */
export function tableSpec(name: string): TableSpec | undefined {
  return BY_NAME.get(name);
}

export function columnNames(table: TableSpec): string[] {
  return Object.keys(table.columns);
}

export function columnSpec(table: TableSpec, column: string): ColumnSpec | undefined {
  return Object.hasOwn(table.columns, column) ? table.columns[column] : undefined;
}

const sensitiveByTable = new WeakMap<TableSpec, readonly string[]>();

/** Asked once per pulled row, so it is worked out once per table. */
export function sensitiveColumns(table: TableSpec): readonly string[] {
  let found = sensitiveByTable.get(table);
  if (!found) sensitiveByTable.set(table, (found = columnNames(table).filter((c) => table.columns[c]?.sensitive === true)));
  return found;
}

export function hasSensitiveColumns(table: TableSpec): boolean {
  return sensitiveColumns(table).length > 0;
}

/** Common columns every synced record carries on the wire. */
export const COMMON_COLUMNS = ['id', 'created_at', 'last_modified_at'] as const;

/** WatermelonDB's local bookkeeping fields, accepted on push and never stored (spec §4.2). */
export const LOCAL_FIELDS = ['_status', '_changed'] as const;
