/**
 * Change sets on the wire (WatermelonDB's format, spec §4.1–4.2) and the validation of a pushed
 * one. Validation is driven by the schema in `schema.ts`; its errors name the table, record and
 * column at fault so a client can set those records aside.
 */
import { err, ok, type Result } from 'neverthrow';
import { z } from 'zod';
import { syncError, validationFailed, type ErrorDetail, type SyncError } from './errors';
import { columnNames, columnSpec, tableSpec, type ColumnSpec, type TableSpec, type WireRecord, type WireValue } from './schema';

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
const idSchema = z
  .string()
  .min(1)
  .max(ID_MAX_LENGTH)
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters')
  .refine(isWellFormedUtf16, 'must be well-formed Unicode (no lone surrogates)');
const msSchema = z.int().nonnegative();

const envelopeSchema = z
  .object({
    last_pulled_at: msSchema.nullable().optional(),
    push_id: idSchema.nullable().optional(),
    changes: z.custom<Record<string, unknown>>(isPlainObject, 'must be an object of tables'),
  })
  .strict();

const tableChangesSchema = z
  .object({
    created: z.array(z.unknown()).optional(),
    updated: z.array(z.unknown()).optional(),
    deleted: z.array(z.unknown()).optional(),
  })
  .strict();

function isJsonArrayString(value: string): boolean {
  try {
    return Array.isArray(JSON.parse(value));
  } catch {
    return false; // not JSON at all: reported as a validation error by the caller
  }
}

/** PostgreSQL text cannot hold NUL nor a lone surrogate, so no synced text may carry one. */
const textSchema = z
  .string()
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')
  .refine(isWellFormedUtf16, 'must be well-formed Unicode (no lone surrogates)');

function valueSchema(spec: ColumnSpec): z.ZodType<WireValue> {
  let base: z.ZodType<WireValue>;
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
      base = textSchema.refine(isJsonArrayString, 'must be a JSON array encoded as a string');
      break;
  }
  return spec.nullable ? base.nullable() : base;
}

const columnSchemas = new Map<ColumnSpec, z.ZodType<WireValue>>();
function schemaFor(spec: ColumnSpec): z.ZodType<WireValue> {
  let s = columnSchemas.get(spec);
  if (!s) columnSchemas.set(spec, (s = valueSchema(spec)));
  return s;
}

/** Why `value` does not fit the column, or null when it does (shared by push validation and the mobile data API). */
export function columnValueProblem(spec: ColumnSpec, value: unknown): string | null {
  const r = schemaFor(spec).safeParse(value);
  return r.success ? null : issueReason(r.error);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function issueReason(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
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

interface RecordContext {
  readonly table: TableSpec;
  readonly userId: string;
  readonly limits: PushLimits;
  readonly details: ErrorDetail[];
  readonly spoofs: ErrorDetail[];
}

function validateRecord(raw: unknown, ctx: RecordContext): PushedRecord | null {
  const table = ctx.table.name;
  if (!isPlainObject(raw)) {
    ctx.details.push({ table, reason: 'record must be an object' });
    return null;
  }
  const idResult = idSchema.safeParse(raw['id']);
  if (!idResult.success) {
    ctx.details.push({ table, column: 'id', reason: `id ${issueReason(idResult.error)}` });
    return null;
  }
  const id = idResult.data;
  const before = ctx.details.length;
  const values: WireRecord = {};
  let changed: string[] | null = null;
  for (const key of Object.keys(raw)) {
    const value = raw[key];
    switch (key) {
      case 'id':
        continue;
      case 'last_modified_at': // server-assigned: ignored on push
        if (value !== null && typeof value !== 'number') ctx.details.push({ table, id, column: key, reason: 'must be a number or null (it is ignored on push)' });
        continue;
      case '_status': // WatermelonDB's local state: ignored on push
        if (typeof value !== 'string') ctx.details.push({ table, id, column: key, reason: 'must be a string (it is ignored on push)' });
        continue;
      case 'created_at': {
        const r = msSchema.safeParse(value);
        if (r.success) values[key] = r.data;
        else ctx.details.push({ table, id, column: key, reason: issueReason(r.error) });
        continue;
      }
      case '_changed': {
        if (typeof value !== 'string') {
          ctx.details.push({ table, id, column: key, reason: 'must be a comma-separated list of column names' });
        } else if (value !== '') {
          changed = value
            .split(',')
            .map((c) => c.trim())
            .filter((c) => columnSpec(ctx.table, c) !== undefined);
        }
        continue;
      }
      case 'user_id':
        if (value !== ctx.userId) ctx.spoofs.push({ table, id, column: key, reason: "user_id is not the caller's" });
        continue;
    }
    const spec = columnSpec(ctx.table, key);
    if (!spec) {
      ctx.details.push({ table, id, column: key, reason: 'unknown column' });
      continue;
    }
    const r = schemaFor(spec).safeParse(value);
    if (r.success) values[key] = r.data;
    else ctx.details.push({ table, id, column: key, reason: issueReason(r.error) });
  }
  if (ctx.details.length !== before) return null;
  // Measured once every value is known to be flat: a deeply nested value never reaches stringify.
  const size = utf8Length(JSON.stringify(raw));
  if (size > ctx.limits.maxRecordBytes) {
    ctx.details.push({ table, id, reason: `record is ${size} bytes, over the limit of ${ctx.limits.maxRecordBytes}` });
    return null;
  }
  return { id, values, changed };
}

/**
 * Validates a push body for `userId`. Nothing of a push is applied unless all of it is valid:
 * 413 when it carries more records than allowed, 403 when a record names another user,
 * 400 with one detail per fault otherwise.
 */
export function validatePush(body: unknown, userId: string, limits: PushLimits): Result<ValidatedPush, SyncError> {
  const envelope = envelopeSchema.safeParse(body);
  if (!envelope.success) {
    return err(
      validationFailed(
        'The push body must be {"changes": {...}, "last_pulled_at": number|null, "push_id"?: string}.',
        envelope.error.issues.map((i) => ({ column: i.path.join('.') || undefined, reason: i.message })).map(dropUndefined),
      ),
    );
  }
  const { changes } = envelope.data;
  const details: ErrorDetail[] = [];
  const spoofs: ErrorDetail[] = [];
  const tables: PushedTable[] = [];
  let recordCount = 0;

  const raws: Array<{ table: TableSpec; created: unknown[]; updated: unknown[]; deleted: unknown[] }> = [];
  for (const name of Object.keys(changes)) {
    const table = tableSpec(name);
    if (!table) {
      details.push({ table: name, reason: 'unknown table' });
      continue;
    }
    const parsed = tableChangesSchema.safeParse(changes[name]);
    if (!parsed.success) {
      details.push({ table: name, reason: issueReason(parsed.error) });
      continue;
    }
    const { created = [], updated = [], deleted = [] } = parsed.data;
    recordCount += created.length + updated.length + deleted.length;
    raws.push({ table, created, updated, deleted });
  }
  if (recordCount > limits.maxRecords) {
    return err(
      syncError('PAYLOAD_TOO_LARGE', `A push may carry at most ${limits.maxRecords} records; this one has ${recordCount}. Split it into smaller batches.`, {
        max_records: limits.maxRecords,
        records: recordCount,
      }),
    );
  }

  for (const { table, created, updated, deleted } of raws.sort((a, b) => a.table.priority - b.table.priority)) {
    const ctx: RecordContext = { table, userId, limits, details, spoofs };
    const seen = new Set<string>();
    const noteId = (id: string): boolean => {
      if (seen.has(id)) {
        details.push({ table: table.name, id, reason: 'the same id appears more than once in this push' });
        return false;
      }
      seen.add(id);
      return true;
    };
    const upserts: PushedRecord[] = [];
    for (const raw of [...created, ...updated]) {
      const record = validateRecord(raw, ctx);
      if (record && noteId(record.id)) upserts.push(record);
    }
    const deletes: string[] = [];
    for (const raw of deleted) {
      const r = idSchema.safeParse(raw);
      if (!r.success) details.push({ table: table.name, column: 'id', reason: `deleted id ${issueReason(r.error)}` });
      else if (noteId(r.data)) deletes.push(r.data);
    }
    tables.push({ table, upserts, deletes });
  }

  if (spoofs.length > 0) {
    return err(syncError('FORBIDDEN', 'A pushed record names another user; nothing of this push was written.', spoofs));
  }
  if (details.length > 0) {
    return err(validationFailed(`The push has ${details.length} invalid entr${details.length === 1 ? 'y' : 'ies'}; nothing was written.`, details));
  }
  return ok({
    lastPulledAt: envelope.data.last_pulled_at ?? null,
    pushId: envelope.data.push_id ?? null,
    tables,
    recordCount,
  });
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
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
