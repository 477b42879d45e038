import type { Knex } from 'knex';

/**
 * One row per field-encryption key id this database has seen, with a fingerprint of its key (an
 * HMAC of a constant under the key; never the key). At start the server refuses a key whose
 * fingerprint differs from the one stored under its id: rows written under the first key could
 * never be decrypted again (docs/security.md, "Review findings", item 2).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sync_field_keys', (t) => {
    t.text('key_id').primary();
    t.text('fingerprint').notNullable();
    t.bigInteger('first_seen_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('sync_field_keys');
}
