/**
 * The query of `GET /api/sync/pull` (spec §4.1, §4.4), parsed and checked against the schema.
 */
import { err, ok, type Result } from 'neverthrow';
import * as z from 'zod/mini';
import { syncError, validationFailed, type ErrorDetail, type SyncError } from './errors';
import { TABLES, tableSpec, type TableSpec } from './schema';

export interface PullRequest {
  readonly since: number | null;
  /** Requested tables, in priority order. */
  readonly tables: readonly TableSpec[];
  readonly limit: number;
  /** Tables to send in full, as for a first sync (WatermelonDB's `migration`). */
  readonly fullTables: ReadonlySet<string>;
}

export type QueryParams = Readonly<Record<string, string | readonly string[] | undefined>>;

const migrationSchema = z.object({
  from: z.optional(z.int()),
  tables: z.optional(z.array(z.string())),
  columns: z.optional(z.array(z.object({ table: z.string(), columns: z.optional(z.array(z.string())) }))),
});

function single(query: QueryParams, name: string, details: ErrorDetail[]): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) {
    details.push({ column: name, reason: 'given more than once' });
    return undefined;
  }
  return v as string | undefined;
}

const INTEGER = /^\d{1,16}$/;

function parseTables(list: string, details: ErrorDetail[], param: string): TableSpec[] {
  const out: TableSpec[] = [];
  for (const name of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const t = tableSpec(name);
    if (t) out.push(t);
    else details.push({ column: param, table: name, reason: 'unknown table' });
  }
  return out;
}

export function parsePullQuery(query: QueryParams, maxLimit: number): Result<PullRequest, SyncError> {
  const details: ErrorDetail[] = [];

  let since: number | null = null;
  const rawSince = single(query, 'last_pulled_at', details);
  if (rawSince !== undefined && rawSince !== '' && rawSince !== 'null' && rawSince !== 'undefined') {
    if (INTEGER.test(rawSince) && Number.isSafeInteger(Number(rawSince))) since = Number(rawSince) || null;
    else details.push({ column: 'last_pulled_at', reason: 'must be a non-negative integer (milliseconds) or null' });
  }

  let limit = maxLimit;
  const rawLimit = single(query, 'limit', details);
  if (rawLimit !== undefined && rawLimit !== '') {
    const n = Number(rawLimit);
    if (INTEGER.test(rawLimit) && n >= 1) limit = Math.min(n, maxLimit);
    else details.push({ column: 'limit', reason: `must be an integer from 1 to ${maxLimit}` });
  }

  let tables: TableSpec[] = [...TABLES];
  const rawTables = single(query, 'tables', details);
  if (rawTables !== undefined && rawTables.trim() !== '') {
    // Only commas (`tables=,`) name no table: refused, not read as "no tables" (which has no
    // page to answer) nor as "all" (the client asked for something else).
    if (rawTables.split(',').every((s) => s.trim() === '')) details.push({ column: 'tables', reason: 'names no table: give a comma list of table names, or leave it out for all' });
    const wanted = new Set(parseTables(rawTables, details, 'tables'));
    tables = TABLES.filter((t) => wanted.has(t));
  }

  const fullTables = new Set<string>();
  const rawMigration = single(query, 'migration', details);
  if (rawMigration !== undefined && rawMigration !== '' && rawMigration !== 'null') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawMigration);
    } catch {
      parsed = undefined; // reported just below
    }
    const m = migrationSchema.safeParse(parsed);
    if (!m.success) details.push({ column: 'migration', reason: 'must be JSON {"from": n, "tables": [...], "columns": [{"table", "columns"}]}' });
    else {
      for (const name of [...(m.data.tables ?? []), ...(m.data.columns ?? []).map((c) => c.table)]) {
        if (tableSpec(name)) fullTables.add(name);
        else details.push({ column: 'migration', table: name, reason: 'unknown table' });
      }
    }
  }

  if (details.length) return err(validationFailed('The pull query is invalid.', details));
  return ok({ since, tables, limit, fullTables });
}

export interface SchemaVersionRange {
  readonly min: number;
  readonly max: number;
}

/** Parses the client's schema version (query parameter or header) and checks it is supported; absent is accepted. */
export function checkSchemaVersion(raw: string | undefined, range: SchemaVersionRange): Result<number | null, SyncError> {
  if (raw === undefined || raw === '') return ok(null);
  if (!INTEGER.test(raw)) return err(validationFailed('schema_version must be an integer.', [{ column: 'schema_version', reason: 'must be an integer' }]));
  const v = Number(raw);
  if (v < range.min || v > range.max) {
    return err(
      syncError('SCHEMA_VERSION_UNSUPPORTED', `Schema version ${v} is not supported; this server accepts ${range.min} to ${range.max}. Update the app.`, {
        min: range.min,
        max: range.max,
      }),
    );
  }
  return ok(v);
}
