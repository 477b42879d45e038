import type { Knex } from 'knex';

/**
 * Which device first wrote each row, so that a device is not told to create a row it created
 * itself (WatermelonDB reports that as a possible bug): for that device such a row is `updated`.
 */
const SYNCED = ['captures', 'todos', 'thoughts', 'ideas', 'projects'] as const;

export async function up(knex: Knex): Promise<void> {
  for (const table of SYNCED) await knex.schema.alterTable(table, (t) => t.text('first_written_by').nullable());
  await knex.raw(`
    CREATE OR REPLACE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      stamp bigint;
    BEGIN
      IF TG_OP = 'UPDATE' AND current_setting('sync.skip_stamp', true) = 'on' THEN RETURN NEW; END IF;
      INSERT INTO sync_users AS u (user_id, last_ts)
        VALUES (NEW.user_id, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
        ON CONFLICT (user_id) DO UPDATE SET last_ts = GREATEST(EXCLUDED.last_ts, u.last_ts + 1)
        RETURNING u.last_ts INTO stamp;
      NEW.last_modified_at := stamp;
      NEW.last_modified_by := NULLIF(current_setting('sync.device_id', true), '');
      IF TG_OP = 'INSERT' THEN
        NEW.first_written_at := stamp;
        NEW.first_written_by := NEW.last_modified_by;
      ELSE
        NEW.first_written_at := OLD.first_written_at;
        NEW.first_written_by := OLD.first_written_by;
      END IF;
      RETURN NEW;
    END
    $$`);
}

export async function down(knex: Knex): Promise<void> {
  // The stamp function of 003 first: this one sets first_written_by, which is about to go.
  await knex.raw(`
    CREATE OR REPLACE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      stamp bigint;
    BEGIN
      IF TG_OP = 'UPDATE' AND current_setting('sync.skip_stamp', true) = 'on' THEN RETURN NEW; END IF;
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
      NEW.last_modified_by := NULLIF(current_setting('sync.device_id', true), '');
      RETURN NEW;
    END
    $$`);
  for (const table of SYNCED) await knex.schema.alterTable(table, (t) => t.dropColumn('first_written_by'));
}
