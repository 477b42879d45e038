import jwt from 'jsonwebtoken';
import type { JwtAlgorithm } from './jwt-token-verifier';

export interface SigningKey {
  readonly key: string;
  readonly algorithms: readonly JwtAlgorithm[];
  readonly issuer?: string;
  readonly audience?: string;
  readonly keyId?: string;
}

/** Signs a token for `userId` (development and operations only; apps get tokens from their identity provider). */
export function signToken(signing: SigningKey, userId: string, options: { admin?: boolean; expiresInSeconds?: number } = {}): string {
  const algorithm = signing.algorithms[0] ?? 'HS256';
  return jwt.sign({ sub: userId, ...(options.admin ? { role: 'admin' } : {}) }, signing.key, {
    algorithm,
    expiresIn: options.expiresInSeconds ?? 3600,
    ...(signing.issuer ? { issuer: signing.issuer } : {}),
    ...(signing.audience ? { audience: signing.audience } : {}),
    ...(signing.keyId ? { keyid: signing.keyId } : {}),
  });
}
