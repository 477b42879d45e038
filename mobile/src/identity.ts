/**
 * Whose client this is: the user a client is created for, and the check that no request goes out
 * under another user's token (a user's pending rows would otherwise land in the other account).
 * The token is only read, never verified (the server does that): its `sub` claim names the user.
 * Decoded by hand, without Node's Buffer nor atob, which Hermes lacks.
 */
import type { SyncFailure } from '../../src/domain';

/** Refused before anything is sent: the token is not the client's user's, or the database belongs to another user. */
export class WrongUserError extends Error {
  readonly code = 'WRONG_USER' as const;
  constructor(message: string) {
    super(message);
    this.name = 'WrongUserError';
  }

  /** How a sync reports it: an authentication failure that no retry can mend (a new token for the right user can). */
  get failure(): SyncFailure {
    return { kind: 'AUTH_ERROR', retryable: false, code: 'WRONG_USER', message: this.message };
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const VALUE: Record<string, number> = Object.fromEntries([...ALPHABET].map((c, i) => [c, i]));

/** The bytes of base64url text (padding and standard base64's `+` `/` accepted too), or null when it is not base64. */
function base64UrlBytes(text: string): Uint8Array | null {
  const clean = text.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  if (clean.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let n = 0;
  for (const c of clean) {
    const v = VALUE[c];
    if (v === undefined) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** UTF-8 bytes to a string (TextDecoder is not on every React Native version). */
function utf8(bytes: Uint8Array): string | null {
  let s = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    const extra = b < 0x80 ? 0 : b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc0 ? 1 : -1;
    if (extra < 0 || i + extra >= bytes.length) return null;
    let cp = extra === 0 ? b : b & (0x3f >> extra);
    for (let k = 1; k <= extra; k++) {
      const c = bytes[i + k]!;
      if ((c & 0xc0) !== 0x80) return null;
      cp = (cp << 6) | (c & 0x3f);
    }
    s += String.fromCodePoint(cp);
    i += extra + 1;
  }
  return s;
}

/** The `sub` claim of a JWT, read without verifying it; null when the token is not a JWT with a string `sub`. */
export function tokenSubject(token: string): string | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const bytes = base64UrlBytes(parts[1]!);
  const text = bytes && utf8(bytes);
  if (text === null || text === undefined) return null;
  try {
    const payload = JSON.parse(text) as unknown;
    const sub = payload !== null && typeof payload === 'object' ? (payload as { sub?: unknown }).sub : undefined;
    return typeof sub === 'string' ? sub : null;
  } catch {
    return null;
  }
}

/** Throws WrongUserError unless `token`'s `sub` is `userId`. */
export function checkTokenUser(token: string, userId: string): void {
  const sub = tokenSubject(token);
  if (sub === userId) return;
  throw new WrongUserError(
    sub === null
      ? `The access token names no user (no readable "sub" claim); this sync client is for user ${JSON.stringify(userId)}, so nothing was sent.`
      : `The access token is for user ${JSON.stringify(sub)}, but this sync client is for user ${JSON.stringify(userId)}: nothing was sent. Sign the client out and create one for the signed-in user.`,
  );
}

/** `getToken` checked: every token it returns is the user's, or it throws WrongUserError (the transports turn that into a failure). */
export function guardToken<A extends unknown[]>(getToken: (...args: A) => string | Promise<string>, userId: string): (...args: A) => Promise<string> {
  return async (...args: A) => {
    const token = await getToken(...args);
    checkTokenUser(token, userId);
    return token;
  };
}
