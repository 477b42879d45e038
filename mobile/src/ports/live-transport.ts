/**
 * The live channel (docs/protocol.md, "Live channel"): the server pokes when the user's data
 * moved; the client then syncs. Optional: without it, the client syncs on its other triggers.
 */

/** Why the channel ended: the server's `bye` code, an HTTP refusal, or a lost connection. */
export interface LiveEnd {
  /** `TOKEN_EXPIRED`, `SHUTTING_DOWN`, an error code of a refusal (`RATE_LIMITED`, `UNAUTHENTICATED`), or `NETWORK`. */
  readonly code: string;
  /** The HTTP status of a refusal, when there was one. */
  readonly status?: number;
}

export interface LiveHandlers {
  /** The server accepted the channel. */
  onOpen(): void;
  /** The user's mark is now `mark`, moved by the push of `deviceId` (null: not one device's echo). */
  onChange(mark: number, deviceId: string | null): void;
  /** Pokes may have been missed: sync. */
  onCheck(): void;
  /** The channel ended; called once, and never after `close()`. */
  onEnd(end: LiveEnd): void;
}

export interface LiveConnection {
  close(): void;
}

/** Opens live channels. Contract: handlers are called in order, nothing after `onEnd` or `close()`. */
export interface LiveTransport {
  connect(handlers: LiveHandlers): LiveConnection;
}

/** An event as an EventSource hands it out (react-native-sse's events fit). */
export interface EventSourceEvent {
  readonly type: string;
  readonly data?: string | null;
  readonly message?: string;
  readonly xhrStatus?: number;
}

/**
 * The part of an EventSource the SSE adapter uses. React Native: react-native-sse (XMLHttpRequest
 * underneath, headers allowed); Node and browsers: FetchEventSource (fetch streaming). The
 * standard browser EventSource cannot send an Authorization header and does not fit.
 */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: EventSourceEvent) => void): void;
  close(): void;
}

/** `pollingInterval: 0`: the library must not reconnect by itself (the client does, with backoff and jitter). */
export type EventSourceFactory = (url: string, options: { headers: Record<string, string>; pollingInterval: number }) => EventSourceLike;
