/**
 * The validation of a pushed change set (spec §4.2), which only the server does. Validation is
 * driven by the schema in `schema.ts`; its errors name the table, record and column at fault so a
 * client can set those records aside. Apart from change-set.ts so that the mobile package, which
 * bundles the domain modules it imports, leaves it out.
 */
import { err, ok, type Result } from 'neverthrow';
import * as z from 'zod/mini';
import { columnValueProblem, ID_MAX_LENGTH, isWellFormedUtf16, utf8Length, type PushedRecord, type PushedTable, type PushLimits, type ValidatedPush } from './change-set';
import { clipReason, faultList, MAX_ERROR_DETAILS, syncError, validationFailed, type ErrorDetail, type SyncError } from './errors';
import { issueReason as fullReason, parseWith, type ParseResult } from './messages';
import { columnSpec, tableSpec, type TableSpec, type WireRecord, type WireValue } from './schema';

const idSchema = z.string().check(
  z.minLength(1),
  z.maxLength(ID_MAX_LENGTH),
  z.regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters'),
  z.refine(isWellFormedUtf16, 'must be well-formed Unicode (no lone surrogates)'),
);
const msSchema = z.int().check(z.nonnegative());

const envelopeSchema = z.strictObject({
  last_pulled_at: z.optional(z.nullable(msSchema)),
  push_id: z.optional(z.nullable(idSchema)),
  changes: z.custom<Record<string, unknown>>(isPlainObject, 'must be an object of tables'),
});

const tableChangesSchema = z.strictObject({
  created: z.optional(z.array(z.unknown())),
  updated: z.optional(z.array(z.unknown())),
  deleted: z.optional(z.array(z.unknown())),
});

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One line naming each issue, cut to a sensible length (a message may list every unknown key). */
function issueReason(error: Extract<ParseResult<unknown>, { success: false }>['error']): string {
  return clipReason(fullReason(error));
}

/** One fault more than an answer lists has been found: validation stops (the answer says the list was cut). */
const enough = (details: readonly ErrorDetail[]): boolean => details.length > MAX_ERROR_DETAILS;

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
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
  const idResult = parseWith(idSchema, raw['id']);
  if (!idResult.success) {
    ctx.details.push({ table, column: 'id', reason: `id ${issueReason(idResult.error)}` });
    return null;
  }
  const id = idResult.data;
  const before = ctx.details.length;
  const values: WireRecord = {};
  let changed: string[] | null = null;
  for (const key of Object.keys(raw)) {
    if (enough(ctx.details) || enough(ctx.spoofs)) break;
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
        const r = parseWith(msSchema, value);
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
        // An array, object, number or boolean is malformed (400), however deep; null or another
        // user's id names someone else (403).
        if (typeof value !== 'string' && value !== null) ctx.details.push({ table, id, column: key, reason: "must be a string (the caller's own user id)" });
        else if (value !== ctx.userId) ctx.spoofs.push({ table, id, column: key, reason: "user_id is not the caller's" });
        continue;
    }
    const spec = columnSpec(ctx.table, key);
    if (!spec) {
      ctx.details.push({ table, id, column: key, reason: 'unknown column' });
      continue;
    }
    const problem = columnValueProblem(spec, value);
    if (problem === null) values[key] = value as WireValue;
    else ctx.details.push({ table, id, column: key, reason: problem });
  }
  if (ctx.details.length !== before) return null;
  // Measured once every value is known to be flat (each key above was checked to hold a string,
  // number, boolean or null), so a deeply nested value never reaches stringify.
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
  const envelope = parseWith(envelopeSchema, body);
  if (!envelope.success) {
    return err(
      validationFailed(
        'The push body must be {"changes": {...}, "last_pulled_at": number|null, "push_id"?: string}.',
        envelope.error.issues.map((i) => ({ column: i.path.join('.') || undefined, reason: clipReason(i.message) })).map(dropUndefined),
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
    if (enough(details)) break;
    const table = tableSpec(name);
    if (!table) {
      details.push({ table: name, reason: 'unknown table' });
      continue;
    }
    const parsed = parseWith(tableChangesSchema, changes[name]);
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
      if (enough(details) || enough(spoofs)) break;
      const record = validateRecord(raw, ctx);
      if (record && noteId(record.id)) upserts.push(record);
    }
    const deletes: string[] = [];
    for (const raw of deleted) {
      if (enough(details)) break;
      const r = parseWith(idSchema, raw);
      if (!r.success) details.push({ table: table.name, column: 'id', reason: `deleted id ${issueReason(r.error)}` });
      else if (noteId(r.data)) deletes.push(r.data);
    }
    tables.push({ table, upserts, deletes });
  }

  if (spoofs.length > 0) {
    return err(faultList('FORBIDDEN', 'A pushed record names another user; nothing of this push was written.', spoofs));
  }
  if (details.length > 0) {
    const count = enough(details) ? `more than ${MAX_ERROR_DETAILS}` : String(details.length);
    return err(validationFailed(`The push has ${count} invalid entr${details.length === 1 ? 'y' : 'ies'}; nothing was written.`, details));
  }
  return ok({
    lastPulledAt: envelope.data.last_pulled_at ?? null,
    pushId: envelope.data.push_id ?? null,
    tables,
    recordCount,
  });
}
