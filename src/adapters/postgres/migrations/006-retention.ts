import type { Knex } from 'knex';

/**
 * Retention (docs/operations.md): tombstones, sync logs, conflicts and push receipts are purged
 * when old. `sync_users.purged_through` is the newest stamp among a user's purged tombstones: a
 * cursor below it may have missed a delete, so pulls and pushes from it are refused with
 * CURSOR_EXPIRED. The partial indexes let the purge find old tombstones without reading live rows.
 */
const SYNCED = ['captures', 'todos', 'thoughts', 'ideas', 'projects'] as const;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sync_users', (t) => t.bigInteger('purged_through').notNullable().defaultTo(0));
  for (const table of SYNCED) await knex.raw(`CREATE INDEX ${table}_tombstones ON ${table} (last_modified_at) WHERE _status = 'deleted'`);
  await knex.schema.alterTable('sync_conflicts', (t) => t.index(['resolved_at']));
  await knex.schema.alterTable('sync_push_receipts', (t) => t.index(['created_at']));
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sync_push_receipts', (t) => t.dropIndex(['created_at']));
  await knex.schema.alterTable('sync_conflicts', (t) => t.dropIndex(['resolved_at']));
  for (const table of SYNCED) await knex.raw(`DROP INDEX ${table}_tombstones`);
  await knex.schema.alterTable('sync_users', (t) => t.dropColumn('purged_through'));
}
