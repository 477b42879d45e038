/** A collision-resistant digest of a text (hex), e.g. SHA-256. */
export interface Digest {
  hash(text: string): string;
}
