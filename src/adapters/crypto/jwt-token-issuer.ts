import jwt from 'jsonwebtoken';
import { DEFAULT_ADMIN_CLAIM, type AdminClaim, type JwtAlgorithm } from './jwt-token-verifier';

export interface SigningKey {
  readonly key: string;
  readonly algorithms: readonly JwtAlgorithm[];
  readonly issuer?: string;
  readonly audience?: string;
  readonly keyId?: string;
  readonly admin?: AdminClaim;
}

/** The claims that make a token an admin's under `admin` (a dotted claim becomes nested objects). */
function adminClaims(admin: AdminClaim): Record<string, unknown> {
  return admin.claim
    .split('.')
    .reduceRight<unknown>((inner, part) => ({ [part]: inner }), admin.claim === DEFAULT_ADMIN_CLAIM.claim ? admin.value : [admin.value]) as Record<string, unknown>;
}

/** Signs a token for `userId` (development and operations only; apps get tokens from their identity provider). */
export function signToken(signing: SigningKey, userId: string, options: { admin?: boolean; expiresInSeconds?: number } = {}): string {
  const algorithm = signing.algorithms[0] ?? 'HS256';
  return jwt.sign({ sub: userId, ...(options.admin ? adminClaims(signing.admin ?? DEFAULT_ADMIN_CLAIM) : {}) }, signing.key, {
    algorithm,
    expiresIn: options.expiresInSeconds ?? 3600,
    ...(signing.issuer ? { issuer: signing.issuer } : {}),
    ...(signing.audience ? { audience: signing.audience } : {}),
    ...(signing.keyId ? { keyid: signing.keyId } : {}),
  });
}
