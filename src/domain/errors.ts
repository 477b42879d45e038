/**
 * The protocol's errors (spec §4.5): stable codes, each with its HTTP status and whether a client
 * may retry. Expected failures travel as `SyncError` values inside a Result; defects throw.
 */

export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, retryable: false },
  // 401s say what the client should do: send a token, get a fresh one, or get a proper one.
  TOKEN_MISSING: { status: 401, retryable: false },
  TOKEN_EXPIRED: { status: 401, retryable: false },
  TOKEN_INVALID: { status: 401, retryable: false },
  FORBIDDEN: { status: 403, retryable: false },
  NOT_FOUND: { status: 404, retryable: false },
  PUSH_ID_REUSED: { status: 409, retryable: false },
  /** The cursor is older than the deletions the server still keeps: sync from the start (keeping local changes). */
  CURSOR_EXPIRED: { status: 410, retryable: false },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false },
  SCHEMA_VERSION_UNSUPPORTED: { status: 426, retryable: false },
  RATE_LIMITED: { status: 429, retryable: true },
  INTERNAL: { status: 500, retryable: true },
  UNAVAILABLE: { status: 503, retryable: true },
  /** The user's storage quota (SYNC_USER_QUOTA_BYTES) would be exceeded: free space first. */
  QUOTA_EXCEEDED: { status: 507, retryable: false },
} as const;

export type SyncErrorCode = keyof typeof ERROR_CODES;

/** Where a validation error was found: the fields that apply (spec §4.2). */
export interface ErrorDetail {
  readonly table?: string;
  readonly id?: string;
  readonly column?: string;
  readonly reason: string;
  readonly [extra: string]: unknown;
}

/**
 * Most details an answer lists. A body with thousands of faults would otherwise get an answer many
 * times its own size; validation stops once it has found one more than this.
 */
export const MAX_ERROR_DETAILS = 100;

export interface SyncError {
  readonly code: SyncErrorCode;
  readonly message: string;
  readonly details?: readonly ErrorDetail[] | Readonly<Record<string, unknown>>;
  /** True when `details` lists only the first MAX_ERROR_DETAILS faults (sent as `details_truncated`). */
  readonly detailsTruncated?: boolean;
  /** The underlying fault, for the server's log only: never sent to a client. */
  readonly cause?: unknown;
}

export function syncError(code: SyncErrorCode, message: string, details?: SyncError['details']): SyncError {
  return details === undefined ? { code, message } : { code, message, details };
}

/** An error listing faults: at most MAX_ERROR_DETAILS of them, marked as cut when there were more. */
export function faultList(code: SyncErrorCode, message: string, details: readonly ErrorDetail[]): SyncError {
  if (details.length <= MAX_ERROR_DETAILS) return syncError(code, message, details);
  return { code, message, details: details.slice(0, MAX_ERROR_DETAILS), detailsTruncated: true };
}

export const validationFailed = (message: string, details: readonly ErrorDetail[] = []): SyncError => faultList('VALIDATION_FAILED', message, details);

/** A fault's reason, cut to a sensible length (a zod message may list every unknown key). */
export function clipReason(reason: string, max = 300): string {
  return reason.length <= max ? reason : `${reason.slice(0, max)}… (${reason.length - max} more characters)`;
}

export function httpStatusOf(code: SyncErrorCode): number {
  return ERROR_CODES[code].status;
}
