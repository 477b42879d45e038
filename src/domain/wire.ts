/**
 * The server's answers as data (spec §4.1–4.2), so a client checks what it receives against the
 * same definition the server is tested with.
 */
import * as z from 'zod/mini';
import type { ChangeSet } from './change-set';
import type { WireRecord } from './schema';

/**
 * A record: an object with a string id whose values are strings, numbers, booleans or null. A
 * plain check rather than a z.record of a union: a pulled page holds up to thousands of records,
 * and zod's record parse copied each one value by value (about 3 µs a record, the device's
 * largest cost in a first sync after SQLite's own work). The record is passed through unchanged.
 */
function isWireRecord(r: unknown): r is WireRecord {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return false;
  const record = r as Record<string, unknown>;
  if (typeof record['id'] !== 'string') return false;
  for (const key of Object.keys(record)) {
    const v = record[key];
    if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return false;
  }
  return true;
}

export interface PullResponseBody {
  readonly changes: ChangeSet;
  readonly timestamp: number;
  readonly has_more?: boolean;
}

export interface PushResponseBody {
  timestamp: number;
  conflicts: Array<{
    table: string;
    id: string;
    type: string;
    resolution: string;
    client_columns?: string[] | undefined;
    server_columns?: string[] | undefined;
  }>;
}

export interface ErrorResponseBody {
  error: { code: string; message: string; details?: unknown };
}

/**
 * What a schema of this module offers its users: a check, with no zod type in its signature, so
 * the mobile package's declarations do not need zod (its code carries the part of zod/mini it uses).
 */
export interface WireSchema<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false };
}

const wireRecord = z.custom<WireRecord>(isWireRecord, 'a record is an object with a string id and string, number, boolean or null values');
const tableChanges = z.object({ created: z.array(wireRecord), updated: z.array(wireRecord), deleted: z.array(z.string()) });

export const pullResponseSchema: WireSchema<PullResponseBody> = z.object({
  changes: z.record(z.string(), tableChanges),
  timestamp: z.number().check(z.positive()),
  has_more: z.optional(z.boolean()),
});

export const pushResponseSchema: WireSchema<PushResponseBody> = z.object({
  timestamp: z.number(),
  conflicts: z.array(
    z.object({
      table: z.string(),
      id: z.string(),
      type: z.string(),
      resolution: z.string(),
      client_columns: z.optional(z.array(z.string())),
      server_columns: z.optional(z.array(z.string())),
    }),
  ),
});

export const errorResponseSchema: WireSchema<ErrorResponseBody> = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.optional(z.unknown()) }),
});
