import type { Result } from 'neverthrow';
import type { SyncError } from '../../domain';

export interface Principal {
  readonly userId: string;
  readonly isAdmin: boolean;
  /** When the token expires (ms since the epoch; the JWT's `exp`): a live channel closes then. */
  readonly expiresAtMs?: number;
}

/** Checks a bearer token; a failure is `TOKEN_EXPIRED` or `TOKEN_INVALID`, with a reason for the log. */
export interface TokenVerifier {
  verify(token: string): Result<Principal, SyncError>;
}
