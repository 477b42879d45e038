export declare const NONCE_BYTES: number;
export declare const TAG_BYTES: number;
export declare function gcmOpen(key: Buffer, nonce: Uint8Array, body: Uint8Array, aad: Uint8Array): string;
