/**
 * Change sets on the wire (WatermelonDB's format, spec §4.1–4.2) and what the server and the
 * mobile client both check of a record: a column's value (`columnValueProblem`), a new row's
 * defaults. The validation of a whole push, which only the server does, is in push-validation.ts.
 */
import { err, ok, type Result } from 'neverthrow';
import * as z from 'zod/mini';
import type { ErrorDetail } from './errors';
import { issueReason, parseWith } from './messages';
import { columnNames, type ColumnSpec, type TableSpec, type WireRecord, type WireValue } from './schema';

export interface TableChanges<R = WireRecord> {
  created: R[];
  updated: R[];
  deleted: string[];
}

export type ChangeSet<R = WireRecord> = Record<string, TableChanges<R>>;

export interface PushedRecord {
  readonly id: string;
  /** Known columns of the table (and `created_at`) that the record carried. */
  readonly values: WireRecord;
  /** Columns named by `_changed`, or null when the record carries none (every pushed column counts). */
  readonly changed: readonly string[] | null;
}

export interface PushedTable {
  readonly table: TableSpec;
  readonly upserts: readonly PushedRecord[];
  readonly deletes: readonly string[];
}

export interface ValidatedPush {
  readonly lastPulledAt: number | null;
  readonly pushId: string | null;
  /** Tables in sync priority order. */
  readonly tables: readonly PushedTable[];
  readonly recordCount: number;
}

export interface PushLimits {
  readonly maxRecords: number;
  readonly maxRecordBytes: number;
}

/**
 * True when `s` has no lone UTF-16 surrogate. PostgreSQL would store one as U+FFFD: a value
 * different from the one sent, and two ids that differ only there would collide. (A loop, not
 * `String.prototype.isWellFormed`, which React Native's engines may lack.)
 */
export function isWellFormedUtf16(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = s.charCodeAt(i + 1);
      if (n >= 0xdc00 && n <= 0xdfff) {
        i++;
        continue;
      }
      return false;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

export const ID_MAX_LENGTH = 128;

function isJsonArrayString(value: string): boolean {
  try {
    return Array.isArray(JSON.parse(value));
  } catch {
    return false; // not JSON at all: reported as a validation error by the caller
  }
}

/** PostgreSQL text cannot hold NUL nor a lone surrogate, so no synced text may carry one. */
const textSchema = z.string().check(
  z.refine((s) => !s.includes('\u0000'), 'must not contain NUL characters'),
  z.refine(isWellFormedUtf16, 'must be well-formed Unicode (no lone surrogates)'),
);

function valueSchema(spec: ColumnSpec): z.ZodMiniType<WireValue> {
  let base: z.ZodMiniType<WireValue>;
  switch (spec.type) {
    case 'text':
      base = spec.enum ? z.enum(spec.enum as [string, ...string[]]) : textSchema;
      break;
    case 'integer':
      base = z.int();
      break;
    case 'boolean':
      base = z.boolean();
      break;
    case 'json_array':
      base = textSchema.check(z.refine(isJsonArrayString, 'must be a JSON array encoded as a string'));
      break;
  }
  return spec.nullable ? z.nullable(base) : base;
}

const columnSchemas = new Map<ColumnSpec, z.ZodMiniType<WireValue>>();
function schemaFor(spec: ColumnSpec): z.ZodMiniType<WireValue> {
  let s = columnSchemas.get(spec);
  if (!s) columnSchemas.set(spec, (s = valueSchema(spec)));
  return s;
}

/**
 * Why `value` does not fit the column, or null when it does (shared by push validation and the
 * mobile data API). A value that fits is stored as it is: no schema here transforms.
 */
export function columnValueProblem(spec: ColumnSpec, value: unknown): string | null {
  const r = parseWith(schemaFor(spec), value);
  return r.success ? null : issueReason(r.error);
}

const NON_ASCII = /[^\x00-\x7f]/;

/** UTF-8 byte length of a string, without TextEncoder (not everywhere in React Native). */
/**
 * A record's size as the storage quota counts it: its id and string values in UTF-8, 8 bytes for
 * any other value, and 64 for the row's own columns (stamps, status).
 */
export function storedRecordBytes(values: Readonly<Record<string, unknown>>): number {
  let n = 64;
  for (const [column, v] of Object.entries(values)) {
    if (column === 'created_at' || column === 'last_modified_at') continue;
    n += typeof v === 'string' ? utf8Length(v) : v === null || v === undefined ? 0 : 8;
  }
  return n;
}

export function utf8Length(s: string): number {
  // Most text is ASCII, one byte a character: a native scan finds the first that is not (a pull
  // page's 3 MB in under 1 ms, a third of the loop's time), and the loop counts from there.
  const first = s.search(NON_ASCII);
  if (first < 0) return s.length;
  let bytes = first;
  for (let i = first; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * The row a pushed record creates: its values plus the defaults of the columns it left out.
 * Required columns it left out are reported as details.
 */
export function completeNewRow(table: TableSpec, record: PushedRecord, nowMs: number): Result<WireRecord, ErrorDetail[]> {
  const row: WireRecord = { created_at: nowMs };
  const missing: ErrorDetail[] = [];
  for (const column of columnNames(table)) {
    const spec = table.columns[column]!;
    if (Object.hasOwn(record.values, column)) row[column] = record.values[column]!;
    else if (spec.default !== undefined) row[column] = spec.default;
    else missing.push({ table: table.name, id: record.id, column, reason: 'required when the record is created' });
  }
  if (Object.hasOwn(record.values, 'created_at')) row['created_at'] = record.values['created_at']!;
  return missing.length ? err(missing) : ok(row);
}

/** A push body in one canonical text (sorted keys), so a replay can be told from a different body. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function emptyTableChanges<R = WireRecord>(): TableChanges<R> {
  return { created: [], updated: [], deleted: [] };
}
