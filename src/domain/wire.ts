/**
 * The server's answers as data (spec §4.1–4.2), so a client checks what it receives against the
 * same definition the server is tested with.
 */
import { z } from 'zod';
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
const wireRecord = z.custom<WireRecord>(isWireRecord, 'a record is an object with a string id and string, number, boolean or null values');
const tableChanges = z.object({ created: z.array(wireRecord), updated: z.array(wireRecord), deleted: z.array(z.string()) });

export const pullResponseSchema = z.object({
  changes: z.record(z.string(), tableChanges),
  timestamp: z.number().positive(),
  has_more: z.boolean().optional(),
});

export const pushResponseSchema = z.object({
  timestamp: z.number(),
  conflicts: z.array(
    z.object({
      table: z.string(),
      id: z.string(),
      type: z.string(),
      resolution: z.string(),
      client_columns: z.array(z.string()).optional(),
      server_columns: z.array(z.string()).optional(),
    }),
  ),
});

export const errorResponseSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

export interface PullResponseBody {
  readonly changes: ChangeSet;
  readonly timestamp: number;
  readonly has_more?: boolean;
}

export type PushResponseBody = z.infer<typeof pushResponseSchema>;
