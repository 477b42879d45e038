import type { Knex } from 'knex';

/**
 * Observability: one row per pull and per push (written in batches, off the request path), and
 * each user's current streak of consecutive failures, kept in the database so that every server
 * process agrees on when a streak crosses the alert threshold.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sync_logs', (t) => {
    t.bigIncrements('id');
    t.text('user_id').notNullable();
    t.text('sync_type').notNullable(); // 'pull' | 'push'
    t.bigInteger('started_at').notNullable();
    t.bigInteger('completed_at').notNullable();
    t.integer('duration_ms').notNullable();
    t.integer('records_synced').notNullable();
    t.jsonb('records_by_table').notNullable();
    t.integer('conflicts').notNullable().defaultTo(0);
    t.bigInteger('bytes_in').notNullable();
    t.bigInteger('bytes_out').notNullable();
    t.text('status').notNullable(); // 'success' | 'failure'
    t.text('error_code').nullable();
    t.text('error_message').nullable();
    t.text('device_id').nullable();
    t.text('app_version').nullable();
    t.integer('schema_version').nullable();
    t.text('request_id').nullable();
    t.index(['started_at']);
    t.index(['user_id', 'started_at']);
  });
  await knex.schema.createTable('sync_failure_streaks', (t) => {
    t.text('user_id').primary();
    t.integer('streak').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.text('last_error_code').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('sync_failure_streaks');
  await knex.schema.dropTableIfExists('sync_logs');
}
