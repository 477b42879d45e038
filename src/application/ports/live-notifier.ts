/**
 * Live pokes (docs/protocol.md, "Live channel"): a committed push tells every server process that
 * a user's high-water mark moved, and each process tells that user's open live channels. A poke
 * carries no data: the pull stays the one path rows take.
 */

/** A user's mark moved to `mark` by a push of `deviceId` (null: not one device's own echo). */
export interface MarkChanged {
  readonly kind: 'mark';
  readonly userId: string;
  readonly mark: number;
  readonly deviceId: string | null;
}

/** Pokes may have been missed (the listening connection was lost and is back): everyone should check. */
export interface CheckNow {
  readonly kind: 'check';
  readonly reason: string;
}

export type LiveEvent = MarkChanged | CheckNow;

/**
 * This process's view of committed pushes, from the database (LISTEN/NOTIFY). Contract: an event
 * is delivered only after its push committed, never for a rolled-back one; after any gap (the
 * listening connection dropped), a `check` event follows once listening again.
 */
export interface LiveFeed {
  /** Starts listening; resolves once notifications are being received. */
  start(): Promise<void>;
  subscribe(listener: (event: LiveEvent) => void): () => void;
  /** Stops listening and releases the connection. */
  close(): Promise<void>;
}

/** The NOTIFY payload of a push (short keys: a payload is at most 8,000 bytes). */
export interface MarkPayload {
  readonly u: string;
  readonly m: number;
  readonly d: string | null;
}

/** The notification channel of a schema: one per schema, so deployments sharing a database never hear each other. */
export function liveChannelName(schema: string): string {
  return `sync_live.${schema}`.slice(0, 63);
}
