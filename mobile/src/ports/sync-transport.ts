import type { Result } from 'neverthrow';
import type { ErrorDetail, PullResponseBody, PushResponseBody, SyncFailure } from '../../../src/domain';

export interface PullParams {
  readonly lastPulledAt: number | null;
  readonly tables: readonly string[];
  readonly limit?: number;
  /**
   * Send the device id so the server leaves out this device's own row versions (default true).
   * False on every page of a first sync: the server cannot tell its continuation pages from an
   * incremental pull, and the device needs its own rows back then.
   */
  readonly suppressEcho?: boolean;
  /**
   * Hears the page's cursor as soon as the answer's head names it, before its body is read
   * (headers `X-Sync-Timestamp` and `X-Sync-Has-More`), so the next page can be asked for at once.
   * Optional both ways: a transport may never call it. Called at most once, before `pull`
   * resolves, and only for a 200 answer; its values are the body's `timestamp` and `has_more`.
   */
  readonly onHead?: (head: PullHead) => void;
  /**
   * WatermelonDB's `migration` (docs/protocol.md): the tables and columns a local schema upgrade
   * added, read by the server from the beginning. Sent on the first page of such a pull only.
   */
  readonly migration?: PullMigration;
}

export interface PullMigration {
  /** The local schema version the device upgraded from. */
  readonly from: number;
  readonly tables: readonly string[];
  readonly columns: ReadonlyArray<{ readonly table: string; readonly columns: readonly string[] }>;
}

/** A pull answer's cursor, told ahead of its body. */
export interface PullHead {
  readonly timestamp: number;
  readonly hasMore: boolean;
}

export interface PushBody {
  readonly last_pulled_at: number | null;
  readonly push_id: string;
  readonly changes: Record<string, { created: unknown[]; updated: unknown[]; deleted: string[] }>;
}

/** A failed exchange: the classification of spec §5, plus the server's details (which records were invalid). */
export interface TransportFailure extends SyncFailure {
  readonly status?: number;
  readonly details?: readonly ErrorDetail[];
}

/**
 * The sync server, as the client sees it. Contract: never throws; a network failure is
 * `NETWORK_ERROR`, a timeout `TIMEOUT`, an HTTP error is classified from its status
 * (`failureFromStatus`), an answer of the wrong shape is a non-retryable `SERVER_ERROR`.
 */
export interface SyncTransport {
  pull(params: PullParams): Promise<Result<PullResponseBody, TransportFailure>>;
  push(body: PushBody): Promise<Result<PushResponseBody, TransportFailure>>;
}
