/**
 * zod/mini's checks, with zod's English messages. zod/mini loads no locale (its messages would
 * all read "Invalid input"), and setting one globally (`z.config`) would also change the
 * messages of an app's own zod schemas: so the English map is passed to each parse instead.
 * Only the English locale is imported, not zod's 64 (a React Native bundle keeps what it imports).
 */
import type * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

const english = en().localeError;

export type ParseResult<T> = { readonly success: true; readonly data: T } | { readonly success: false; readonly error: { readonly issues: readonly ZodIssueLike[] } };
interface ZodIssueLike {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/** `schema.safeParse(value)` with English messages. */
export function parseWith<T>(schema: z.ZodMiniType<T>, value: unknown): ParseResult<T> {
  return schema.safeParse(value, { error: english }) as ParseResult<T>;
}

/** One line naming each issue (with its path, when nested). */
export function issueReason(error: { readonly issues: readonly ZodIssueLike[] }): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message)).join('; ');
}
