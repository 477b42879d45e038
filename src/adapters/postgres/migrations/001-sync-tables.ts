import type { Knex } from 'knex';

/**
 * The five synced tables, keyed by (user_id, id), and the per-user stamp that orders every row
 * write (spec §3). Migrations are history: later changes go in new files, and
 * test/integration/schema-drift.test.ts checks the result against the domain schema.
 */

const SYNCED = ['captures', 'todos', 'thoughts', 'ideas', 'projects'] as const;

function common(t: Knex.CreateTableBuilder): void {
  t.text('user_id').notNullable();
  t.text('id').notNullable();
  t.bigInteger('created_at').notNullable();
  // Set by the sync_stamp trigger: never by application code.
  t.bigInteger('last_modified_at').notNullable();
  t.bigInteger('first_written_at').notNullable();
  t.text('last_modified_by').nullable();
  t.text('_status').notNullable().defaultTo('active');
  t.primary(['user_id', 'id']);
  t.index(['user_id', 'last_modified_at']);
}

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sync_users', (t) => {
    t.text('user_id').primary();
    t.bigInteger('last_ts').notNullable().defaultTo(0);
  });

  await knex.schema.createTable('captures', (t) => {
    common(t);
    t.text('type').notNullable();
    t.text('raw_content').notNullable();
    t.text('normalized_text').nullable();
    t.text('state').notNullable().defaultTo('captured');
    t.text('tags').notNullable().defaultTo('[]');
    t.text('project_id').nullable();
    t.bigInteger('duration_ms').nullable();
    t.boolean('encrypted').notNullable().defaultTo(false);
  });
  await knex.schema.createTable('todos', (t) => {
    common(t);
    t.text('thought_id').nullable();
    t.text('description').notNullable();
    t.text('state').notNullable().defaultTo('todo');
    t.text('priority').notNullable().defaultTo('medium');
    t.bigInteger('deadline').nullable();
    t.bigInteger('completed_at').nullable();
    t.text('project_id').nullable();
  });
  await knex.schema.createTable('thoughts', (t) => {
    common(t);
    t.text('capture_id').notNullable();
    t.text('summary').notNullable();
  });
  await knex.schema.createTable('ideas', (t) => {
    common(t);
    t.text('thought_id').nullable();
    t.text('text').notNullable();
  });
  await knex.schema.createTable('projects', (t) => {
    common(t);
    t.text('name').notNullable();
    t.text('color').nullable();
    t.boolean('archived').notNullable().defaultTo(false);
  });

  await knex.schema.createTable('sync_conflicts', (t) => {
    t.bigIncrements('id');
    t.text('user_id').notNullable();
    t.text('entity').notNullable();
    t.text('record_id').notNullable();
    t.text('conflict_type').notNullable();
    t.text('resolution_strategy').notNullable();
    t.jsonb('client_columns').notNullable();
    t.jsonb('server_columns').notNullable();
    t.bigInteger('resolved_at').notNullable();
    t.index(['user_id', 'resolved_at']);
  });

  await knex.schema.createTable('sync_push_receipts', (t) => {
    t.text('user_id').notNullable();
    t.text('push_id').notNullable();
    t.text('body_hash').notNullable();
    t.jsonb('response').notNullable();
    t.bigInteger('created_at').notNullable();
    t.primary(['user_id', 'push_id']);
  });

  // Every write of a user's row takes the next stamp under a lock on the user's sync_users row,
  // held until commit: stamps are unique per user and commit in stamp order, so a pull that reads
  // sync_users.last_ts and the rows in one snapshot can hand out last_ts as a safe cursor.
  await knex.raw(`
    CREATE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      stamp bigint;
    BEGIN
      INSERT INTO sync_users AS u (user_id, last_ts)
        VALUES (NEW.user_id, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
        ON CONFLICT (user_id) DO UPDATE SET last_ts = GREATEST(EXCLUDED.last_ts, u.last_ts + 1)
        RETURNING u.last_ts INTO stamp;
      NEW.last_modified_at := stamp;
      IF TG_OP = 'INSERT' THEN
        NEW.first_written_at := stamp;
      ELSE
        NEW.first_written_at := OLD.first_written_at;
      END IF;
      -- Set (transaction-locally) by a push for the versions it writes on a device's behalf;
      -- any other writer leaves it empty, so every device pulls its change.
      NEW.last_modified_by := NULLIF(current_setting('sync.device_id', true), '');
      RETURN NEW;
    END
    $$`);
  for (const table of SYNCED) {
    await knex.raw(`CREATE TRIGGER ${table}_sync_stamp BEFORE INSERT OR UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION sync_stamp()`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [...SYNCED, 'sync_conflicts', 'sync_push_receipts', 'sync_users']) {
    await knex.schema.dropTableIfExists(table);
  }
  await knex.raw('DROP FUNCTION IF EXISTS sync_stamp()');
}
