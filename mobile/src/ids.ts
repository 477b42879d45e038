/**
 * Ids for new records, push batches and the device: random (version 4) UUIDs from a
 * cryptographic source. Version 4 rather than 7: an id then tells nothing about when or where it
 * was made (a version 7 id carries its creation time, read from a phone clock that may be wrong),
 * and nothing orders rows by id (pulls go by `last_modified_at`, lists by their own columns), so
 * 7's sortable ids would buy no index locality worth the leak. 122 random bits make a collision
 * between two offline devices negligible. Written here rather than taken from `uuid`: it is the
 * same eight lines over `crypto.getRandomValues`, and `uuid`'s Node build imports `node:crypto`,
 * which this package must not carry.
 */

/** `length` cryptographically random bytes. */
export type RandomBytes = (length: number) => Uint8Array;

export class NoSecureRandomSourceError extends Error {
  constructor() {
    super(
      'No secure random source: globalThis.crypto.getRandomValues is missing (Hermes has none of its own). ' +
        "Add `import 'react-native-get-random-values';` as the first line of your app's entry file, or pass `randomBytes` to createSyncClient.",
    );
    this.name = 'NoSecureRandomSourceError';
  }
}

interface CryptoLike {
  getRandomValues?: (a: Uint8Array) => Uint8Array;
}

/** Whether `globalThis.crypto.getRandomValues` is there (react-native-get-random-values installs it). */
export function hasSecureRandom(): boolean {
  return typeof (globalThis as { crypto?: CryptoLike }).crypto?.getRandomValues === 'function';
}

/** The default random source: `globalThis.crypto.getRandomValues`, or a clear error naming the polyfill. */
export const secureRandomBytes: RandomBytes = (length) => {
  const c = (globalThis as { crypto?: CryptoLike }).crypto;
  if (typeof c?.getRandomValues !== 'function') throw new NoSecureRandomSourceError();
  return c.getRandomValues(new Uint8Array(length));
};

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A version 4 UUID (RFC 9562 §5.4), lower case, from 16 bytes of `randomBytes`. */
export function uuidV4(randomBytes: RandomBytes = secureRandomBytes): string {
  const b = randomBytes(16);
  if (!(b instanceof Uint8Array) || b.length < 16) throw new TypeError('randomBytes(16) must return a Uint8Array of 16 bytes');
  const h = (i: number) => HEX[i === 6 ? (b[6]! & 0x0f) | 0x40 : i === 8 ? (b[8]! & 0x3f) | 0x80 : b[i]!]!;
  return `${h(0)}${h(1)}${h(2)}${h(3)}-${h(4)}${h(5)}-${h(6)}${h(7)}-${h(8)}${h(9)}-${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`;
}
