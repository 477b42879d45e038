/**
 * The server's answers as data (spec §4.1–4.2), so a client checks what it receives against the
 * same definition the server is tested with.
 */
import { z } from 'zod';
import type { ChangeSet } from './change-set';

const wireValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const wireRecord = z.record(z.string(), wireValue).refine((r) => typeof r['id'] === 'string', 'a record needs a string id');
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
