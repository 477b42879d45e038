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
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false },
  SCHEMA_VERSION_UNSUPPORTED: { status: 426, retryable: false },
  RATE_LIMITED: { status: 429, retryable: true },
  INTERNAL: { status: 500, retryable: true },
  UNAVAILABLE: { status: 503, retryable: true },
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

export interface SyncError {
  readonly code: SyncErrorCode;
  readonly message: string;
  readonly details?: readonly ErrorDetail[] | Readonly<Record<string, unknown>>;
  /** The underlying fault, for the server's log only: never sent to a client. */
  readonly cause?: unknown;
}

export function syncError(code: SyncErrorCode, message: string, details?: SyncError['details']): SyncError {
  return details === undefined ? { code, message } : { code, message, details };
}

export const validationFailed = (message: string, details: readonly ErrorDetail[] = []): SyncError =>
  syncError('VALIDATION_FAILED', message, details);

export function httpStatusOf(code: SyncErrorCode): number {
  return ERROR_CODES[code].status;
}
