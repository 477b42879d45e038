import type { Knex } from 'knex';

/**
 * Each user's stored bytes, for the storage quota (SYNC_USER_QUOTA_BYTES): kept by the push, under
 * the user's lock, as the growth of what it writes (docs/security.md, "Review findings", item 1).
 * Existing rows are counted here once by their stored size (encrypted values with their base64
 * overhead, so an estimate on the high side until they are rewritten).
 */
const SYNCED = ['captures', 'todos', 'thoughts', 'ideas', 'projects'] as const;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sync_users', (t) => t.bigInteger('stored_bytes').notNullable().defaultTo(0));
  // A new database has no users to count (and PGlite's catalog queries cost a fresh start seconds).
  if (!(await knex('sync_users').first('user_id'))) return;
  for (const table of SYNCED) {
    // Every text column of the table as it stands now, from the catalog.
    const columns = (
      (await knex.raw(
        `SELECT attname AS column_name FROM pg_attribute WHERE attrelid = ?::regclass AND atttypid = 'text'::regtype AND attnum > 0 AND NOT attisdropped AND attname NOT IN ('user_id', 'id', '_status', 'last_modified_by', 'first_written_by')`,
        [table],
      )) as { rows: Array<{ column_name: string }> }
    ).rows.map((r) => r.column_name);
    const size = ['64', 'octet_length(id)', ...columns.map((c) => `coalesce(octet_length("${c}"), 0)`)].join(' + ');
    await knex.raw(
      `UPDATE sync_users u SET stored_bytes = u.stored_bytes + s.bytes FROM (SELECT user_id, sum(${size})::bigint AS bytes FROM "${table}" GROUP BY user_id) s WHERE s.user_id = u.user_id`,
    );
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sync_users', (t) => t.dropColumn('stored_bytes'));
}
