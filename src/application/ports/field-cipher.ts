import type { Result } from 'neverthrow';
import type { SyncError } from '../../domain';

/** How every ciphertext `FieldCipher.encrypt` makes begins: a row marked encrypted whose value does not is not trusted as plaintext. */
export const CIPHERTEXT_PREFIX = 'enc:';

/** Where a value lives: its ciphertext is bound to it, so a copy anywhere else fails to decrypt. */
export interface FieldPlace {
  readonly table: string;
  readonly column: string;
  readonly userId: string;
  readonly recordId: string;
}

/** A stored value and where it lives. */
export interface StoredField {
  readonly stored: string;
  readonly place: FieldPlace;
}

/**
 * Encryption at rest of the schema's sensitive columns. Contract (test/unit/adapters/crypto):
 * `encrypt` uses the current key and a fresh random nonce, so equal plaintexts differ;
 * `decrypt` returns the plaintext of a value `encrypt` produced for the same place with any key
 * of the ring, passes a value that is not a ciphertext through unchanged (written before
 * encryption, or by another process: `npm run reencrypt` encrypts those), and is `INTERNAL` with a
 * clear message for a tampered or moved ciphertext or an unknown key, never garbage.
 */
export interface FieldCipher {
  encrypt(plaintext: string, place: FieldPlace): string;
  decrypt(stored: string, place: FieldPlace): Result<string, SyncError>;
  /**
   * `decrypt` of many values (a pull page): the same results in the same order, or the first
   * failure. May spread the work over other threads.
   */
  decryptAll(items: readonly StoredField[]): Promise<Result<string[], SyncError>>;
  /** True when the value is not a ciphertext under the current key (plaintext, or an older key). */
  isStale(stored: string): boolean;
  /** The id of the key new values are encrypted with. */
  readonly currentKeyId: string;
}
