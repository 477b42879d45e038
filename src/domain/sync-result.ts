/**
 * What a client's `sync()` reports when it fails (spec §5), and how a transport outcome maps to it.
 */
import type { SyncErrorCode } from './errors';

export type SyncResultKind = 'NETWORK_ERROR' | 'AUTH_ERROR' | 'CONFLICT' | 'SERVER_ERROR' | 'TIMEOUT' | 'SCHEMA_MISMATCH';

/** Codes of failures the client itself decides, before anything is sent (the server never answers them). */
export type ClientErrorCode = 'WRONG_USER';

export interface SyncFailure {
  readonly kind: SyncResultKind;
  readonly retryable: boolean;
  readonly message: string;
  /** The server's error code, when the server answered; or the client's own (`WRONG_USER`: the token is another user's). */
  readonly code?: SyncErrorCode | ClientErrorCode;
  /** Seconds the server asked to wait (429 Retry-After). */
  readonly retryAfterSeconds?: number;
}

/** Classifies an HTTP error answer from the server. */
export function failureFromStatus(status: number, code: SyncErrorCode | undefined, message: string, retryAfterSeconds?: number): SyncFailure {
  const base = { message, ...(code ? { code } : {}), ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) };
  if (status === 401 || status === 403) return { kind: 'AUTH_ERROR', retryable: false, ...base };
  if (status === 409) return { kind: 'CONFLICT', retryable: false, ...base };
  if (status === 426) return { kind: 'SCHEMA_MISMATCH', retryable: false, ...base };
  if (status === 429) return { kind: 'SERVER_ERROR', retryable: true, ...base };
  // The user's storage is full: the same push would fail again until they free some.
  if (status === 507) return { kind: 'SERVER_ERROR', retryable: false, ...base };
  if (status === 408 || status === 504) return { kind: 'TIMEOUT', retryable: true, ...base };
  if (status >= 500) return { kind: 'SERVER_ERROR', retryable: true, ...base };
  return { kind: 'SERVER_ERROR', retryable: false, ...base };
}

export const networkFailure = (message: string): SyncFailure => ({ kind: 'NETWORK_ERROR', retryable: true, message });
export const timeoutFailure = (message: string): SyncFailure => ({ kind: 'TIMEOUT', retryable: true, message });
