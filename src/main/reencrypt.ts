import { AesGcmFieldCipher } from '../adapters/crypto/aes-gcm-field-cipher';
import { describeTarget, openDatabase } from '../adapters/postgres/connection';
import { migrateToLatest } from '../adapters/postgres/migrations';
import { reencryptAll } from '../adapters/postgres/knex-reencryptor';
import { ConfigError, loadConfig } from './config';

/**
 * `npm run reencrypt [-- --batch N]`: re-encrypts every sensitive value under the first key of
 * FIELD_ENCRYPTION_KEYS (and encrypts any plaintext), in batches of N rows, each its own
 * transaction. Stop it at any time; run it again to carry on. Keep the old key in the ring until it
 * has finished.
 */
const args = process.argv.slice(2);
const batchIndex = args.indexOf('--batch');
const batch = batchIndex >= 0 ? Number(args[batchIndex + 1]) : 500;
if (!Number.isInteger(batch) || batch < 1) {
  console.error('usage: npm run reencrypt -- [--batch N]');
  process.exit(2);
}
try {
  const config = loadConfig();
  const db = openDatabase(config.database);
  try {
    await migrateToLatest(db);
    const cipher = new AesGcmFieldCipher(config.fieldKeys.ring);
    console.log(`re-encrypting on ${describeTarget(config.database)} with key "${cipher.currentKeyId}", ${batch} rows per batch`);
    const total = await reencryptAll(db, cipher, batch, (table, done) => console.log(`${table}: ${done} rows`));
    console.log(`done: ${total} rows re-encrypted`);
  } finally {
    await db.destroy();
  }
} catch (e) {
  console.error(e instanceof ConfigError ? `Configuration error: ${e.message}` : e instanceof Error ? e.message : e);
  process.exit(1);
}
