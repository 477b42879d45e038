import type { Knex } from 'knex';

export interface KeyFingerprint {
  readonly id: string;
  readonly fingerprint: string;
}

/** A key id whose stored fingerprint differs from the configured key's. */
export interface FingerprintMismatch {
  readonly id: string;
  readonly stored: string;
  readonly given: string;
}

/**
 * Records the fingerprint of each key id not seen before (the first writer wins, whatever the
 * race between replicas), then compares every configured one with what the database holds.
 */
export async function checkKeyFingerprints(db: Knex, keys: readonly KeyFingerprint[], nowMs: number): Promise<FingerprintMismatch[]> {
  if (keys.length === 0) return [];
  await db('sync_field_keys')
    .insert(keys.map((k) => ({ key_id: k.id, fingerprint: k.fingerprint, first_seen_at: nowMs })))
    .onConflict('key_id')
    .ignore();
  const stored = (await db('sync_field_keys').whereIn('key_id', keys.map((k) => k.id)).select('key_id', 'fingerprint')) as Array<{ key_id: string; fingerprint: string }>;
  const byId = new Map(stored.map((r) => [r.key_id, r.fingerprint]));
  return keys.filter((k) => byId.get(k.id) !== k.fingerprint).map((k) => ({ id: k.id, stored: byId.get(k.id) ?? '(none)', given: k.fingerprint }));
}
