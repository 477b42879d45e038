import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { err, ok, type Result } from 'neverthrow';
import { syncError, type SyncError } from '../../domain';
import type { FieldCipher, FieldPlace, StoredField } from '../../application/ports';
import { gcmOpen, NONCE_BYTES, TAG_BYTES } from './gcm-open.mjs';

/** See AesGcmFieldCipher.takeApart. */
export type TakenApart =
  | { readonly sealed: false; readonly plain: string }
  | { readonly sealed: true; readonly keyIndex: number; readonly key: Buffer; readonly nonce: Buffer; readonly body: Buffer; readonly aad: Buffer };

export interface FieldKey {
  readonly id: string;
  /** 32 bytes (AES-256). */
  readonly key: Buffer;
}

const PREFIX = 'enc:v1:';

/**
 * A key's fingerprint: HMAC-SHA256 of a fixed label under the key, hex. It tells two keys apart
 * without revealing either (finding the key from it is as hard as breaking HMAC-SHA256).
 */
export function keyFingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('note-sync field-encryption key fingerprint v1').digest('hex');
}
const NONCES_PER_FILL = 4096;
const AUTH_FAILED = 'authentication failed: the value was tampered with, or copied from another place';

const aad = (p: FieldPlace) => Buffer.from(JSON.stringify([p.table, p.column, p.userId, p.recordId]), 'utf8');

function failed<T = string>(place: FieldPlace, why: string): Result<T, SyncError> {
  return err({
    ...syncError('INTERNAL', 'A stored value could not be decrypted; the operators have been told.'),
    cause: `${place.table}.${place.column} of record ${place.recordId} (user ${place.userId}): ${why}`,
  });
}

/**
 * AES-256-GCM with node:crypto. A value is `enc:v1:<key id>:<nonce>:<ciphertext+tag>` (base64url);
 * its place (table, column, user, record id) is the associated data.
 */
export class AesGcmFieldCipher implements FieldCipher {
  private readonly keys: ReadonlyMap<string, Buffer>;
  private readonly keyIndex: ReadonlyMap<string, number>;
  /** The ring's keys in order: a TakenApart value's keyIndex points here. */
  readonly ring: readonly Buffer[];
  readonly currentKeyId: string;
  private nonces = Buffer.alloc(0);
  private nonceAt = 0;

  /** `ring[0]` encrypts; every key of the ring decrypts. */
  constructor(ring: readonly FieldKey[]) {
    if (ring.length === 0) throw new Error('the key ring is empty');
    for (const k of ring) if (k.key.length !== 32) throw new Error(`key ${k.id} is not 32 bytes`);
    this.keys = new Map(ring.map((k) => [k.id, k.key]));
    this.keyIndex = new Map(ring.map((k, i) => [k.id, i]));
    this.ring = ring.map((k) => k.key);
    this.currentKeyId = ring[0]!.id;
  }

  encrypt(plaintext: string, place: FieldPlace): string {
    const nonce = this.nextNonce();
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, nonce);
    cipher.setAAD(aad(place));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${PREFIX}${this.currentKeyId}:${nonce.toString('base64url')}:${body.toString('base64url')}`;
  }

  decrypt(stored: string, place: FieldPlace): Result<string, SyncError> {
    const taken = this.takeApart(stored, place);
    if (taken.isErr()) return err(taken.error);
    const v = taken.value;
    if (!v.sealed) return ok(v.plain);
    try {
      return ok(gcmOpen(v.key, v.nonce, v.body, v.aad));
    } catch {
      return failed(place, AUTH_FAILED);
    }
  }

  /**
   * A stored value taken apart for gcmOpen (the part of decrypt a decrypt thread cannot do: it
   * has neither the format nor the places), or the plaintext a value that is not a ciphertext is.
   */
  takeApart(stored: string, place: FieldPlace): Result<TakenApart, SyncError> {
    if (!stored.startsWith(PREFIX)) return ok({ sealed: false, plain: stored });
    // The hot path of a pull (one call per encrypted value sent): no closure, no Buffer.concat.
    const [keyId, nonce64, body64, extra] = stored.slice(PREFIX.length).split(':');
    if (!keyId || !nonce64 || !body64 || extra !== undefined) return failed(place, 'malformed ciphertext');
    const keyIndex = this.keyIndex.get(keyId);
    if (keyIndex === undefined) return failed(place, `key "${keyId}" is not in FIELD_ENCRYPTION_KEYS`);
    const nonce = Buffer.from(nonce64, 'base64url');
    const body = Buffer.from(body64, 'base64url');
    if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) return failed(place, 'malformed ciphertext');
    return ok({ sealed: true, keyIndex, key: this.ring[keyIndex]!, nonce, body, aad: aad(place) });
  }

  /** decrypt of each item, in order, on this thread; the first failure ends it. */
  decryptList(items: readonly StoredField[]): Result<string[], SyncError> {
    const out: string[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const r = this.decrypt(items[i]!.stored, items[i]!.place);
      if (r.isErr()) return err(r.error);
      out[i] = r.value;
    }
    return ok(out);
  }

  decryptAll(items: readonly StoredField[]): Promise<Result<string[], SyncError>> {
    return Promise.resolve(this.decryptList(items));
  }

  /**
   * A fresh random nonce, cut from a buffer the CSPRNG fills 4,096 nonces at a time, each used
   * once: randomBytes(12) per value cost about 5 µs, a tenth of a push's work per record.
   */
  private nextNonce(): Buffer {
    if (this.nonceAt + NONCE_BYTES > this.nonces.length) {
      this.nonces = randomBytes(NONCE_BYTES * NONCES_PER_FILL);
      this.nonceAt = 0;
    }
    return this.nonces.subarray(this.nonceAt, (this.nonceAt += NONCE_BYTES));
  }

  isStale(stored: string): boolean {
    return !stored.startsWith(`${PREFIX}${this.currentKeyId}:`);
  }
}
