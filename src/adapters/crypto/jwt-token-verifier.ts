import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { err, ok, type Result } from 'neverthrow';
import { isWellFormedUtf16, syncError, type SyncError } from '../../domain';
import type { Principal, TokenVerifier } from '../../application/ports';

export type JwtAlgorithm = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'ES512';

export interface JwtVerifierOptions {
  /** The HMAC secret, or the PEM public key for RS/ES algorithms. */
  readonly key: string;
  /** Further HMAC secrets still accepted during a rotation (JWT_SECRET=new,old). */
  readonly olderKeys?: readonly string[];
  /** Pinned: a token signed any other way (`none` included) is refused. */
  readonly algorithms: readonly JwtAlgorithm[];
  readonly issuer?: string;
  readonly audience?: string;
  readonly clockToleranceSeconds?: number;
  /** When set, a token must name this key in its `kid` header. */
  readonly keyId?: string;
  /** Who is an admin: the claim (a dotted path reaches into objects) and the value it holds, or an array of it holds. Default `role` = `admin`. */
  readonly admin?: AdminClaim;
}

export interface AdminClaim {
  /** A claim name, or a dotted path such as `realm_access.roles`. */
  readonly claim: string;
  readonly value: string;
}

export const DEFAULT_ADMIN_CLAIM: AdminClaim = { claim: 'role', value: 'admin' };

/** Whether the payload's admin claim holds the admin value: the claim is that string, or an array holding it. */
export function holdsAdminClaim(payload: Record<string, unknown>, admin: AdminClaim): boolean {
  let v: unknown = payload;
  for (const part of admin.claim.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, part)) return false;
    v = (v as Record<string, unknown>)[part];
  }
  return v === admin.value || (Array.isArray(v) && v.includes(admin.value));
}

// What the client is told: what to do, never which check failed against which key or claim
// (that reason goes to the server's log only).
const unauthenticated = (reason: string, code: 'TOKEN_INVALID' | 'TOKEN_EXPIRED' = 'TOKEN_INVALID'): SyncError => ({
  ...syncError(
    code,
    code === 'TOKEN_EXPIRED'
      ? 'The token has expired: get a fresh one from your identity provider and send the request again.'
      : 'The token is not valid for this server (signature, algorithm, issuer, audience, exp or sub): get a new one from your identity provider.',
  ),
  cause: reason,
});

/** Verifies JWTs as spec §2 asks: pinned algorithms, `exp` required, `nbf`, `iss`/`aud` when configured, `sub` required. */
export class JwtTokenVerifier implements TokenVerifier {
  /**
   * The key as a KeyObject, made once: given a string, jsonwebtoken first tries (and fails) to
   * parse it as a public key on every request, which cost about 0.8 ms per request under load.
   */
  private readonly keys: readonly KeyObject[];

  constructor(private readonly options: JwtVerifierOptions) {
    const hmac = options.algorithms.every((a) => a.startsWith('HS'));
    this.keys = hmac ? [options.key, ...(options.olderKeys ?? [])].map((k) => createSecretKey(Buffer.from(k, 'utf8'))) : [createPublicKey(options.key)];
  }

  /** Tries each key in turn: only a signature that no key matches moves on to the next. */
  private check(token: string): jwt.Jwt {
    const options: jwt.VerifyOptions & { complete: true } = {
      algorithms: [...this.options.algorithms],
      ...(this.options.issuer ? { issuer: this.options.issuer } : {}),
      ...(this.options.audience ? { audience: this.options.audience } : {}),
      clockTolerance: this.options.clockToleranceSeconds ?? 5,
      complete: true,
    };
    for (let i = 0; ; i++) {
      try {
        return jwt.verify(token, this.keys[i]!, options);
      } catch (e) {
        if (i === this.keys.length - 1 || !(e instanceof jwt.JsonWebTokenError) || e.message !== 'invalid signature') throw e;
      }
    }
  }

  verify(token: string): Result<Principal, SyncError> {
    let payload: string | jwt.JwtPayload;
    try {
      const verified = this.check(token);
      if (this.options.keyId !== undefined && verified.header.kid !== this.options.keyId) {
        return err(unauthenticated(`unknown kid ${JSON.stringify(verified.header.kid ?? null)}`));
      }
      payload = verified.payload;
    } catch (e) {
      // jsonwebtoken checks the signature before exp: only a genuine token is ever called expired.
      if (e instanceof jwt.TokenExpiredError) return err(unauthenticated(e.message, 'TOKEN_EXPIRED'));
      return err(unauthenticated(e instanceof Error ? e.message : 'invalid token'));
    }
    if (typeof payload === 'string') return err(unauthenticated('payload is not a JSON object'));
    if (typeof payload.exp !== 'number') return err(unauthenticated('token has no exp'));
    // The sub becomes every row's user_id: no control characters, no lone surrogates (PostgreSQL
    // cannot hold NUL, and stores a lone surrogate as U+FFFD, merging distinct subs).
    if (typeof payload.sub !== 'string' || !/^[^\u0000-\u001f\u007f]{1,255}$/.test(payload.sub) || !isWellFormedUtf16(payload.sub)) {
      return err(unauthenticated('token has no usable sub'));
    }
    return ok({ userId: payload.sub, isAdmin: holdsAdminClaim(payload, this.options.admin ?? DEFAULT_ADMIN_CLAIM), expiresAtMs: payload.exp * 1000 });
  }
}
