import type { Knex } from 'knex';

/**
 * The writing device travels in the written rows, not in a session setting. A push sets
 * `written_by` on every row it inserts or updates; the stamp trigger takes `last_modified_by` (and,
 * on insert, `first_written_by`) from it and clears it, so the column never holds a value and a
 * later write that does not set it (re-encryption, an admin's UPDATE) is stamped as no device's,
 * as before.
 *
 * Why: on a distributed PostgreSQL (Citus) the statement runs on the node of the user's shard,
 * where a setting made on the coordinator (`sync.device_id`) does not exist; a value in the row
 * goes wherever the row goes. The setting is still read when `written_by` is empty, so a server of
 * the previous version, still running during a rolling deploy, stamps as it did.
 *
 * An INSERT … ON CONFLICT DO UPDATE sees in EXCLUDED the proposed row after the BEFORE INSERT
 * trigger, whose `written_by` is already cleared: the push's DO UPDATE sets
 * `written_by = EXCLUDED.last_modified_by`, the device that trigger found.
 */
const SYNCED = ['captures', 'todos', 'thoughts', 'ideas', 'projects'] as const;

const NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

/** The stamp function of 005, with the device read from `device` (an SQL expression). */
function stamp(device: string, clear: boolean): string {
  return `
    CREATE OR REPLACE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      cached text;
      previous bigint;
      stamp bigint;
    BEGIN
      IF TG_OP = 'UPDATE' AND current_setting('sync.skip_stamp', true) = 'on' THEN
        ${clear ? 'NEW.written_by := NULL;' : ''}
        RETURN NEW;
      END IF;
      cached := current_setting('sync.stamp_cache', true);
      IF cached IS NOT NULL AND cached <> '' THEN
        previous := split_part(cached, ':', 1)::bigint;
        IF substr(cached, length(previous::text) + 2) = NEW.user_id THEN
          stamp := GREATEST(${NOW_MS}, previous + 1);
        ELSE
          PERFORM sync_stamp_write_back();
        END IF;
      END IF;
      IF stamp IS NULL THEN
        INSERT INTO sync_users AS u (user_id, last_ts)
          VALUES (NEW.user_id, ${NOW_MS})
          ON CONFLICT (user_id) DO UPDATE SET last_ts = GREATEST(EXCLUDED.last_ts, u.last_ts + 1)
          RETURNING u.last_ts INTO stamp;
      END IF;
      PERFORM set_config('sync.stamp_cache', stamp::text || ':' || NEW.user_id, true);
      NEW.last_modified_at := stamp;
      NEW.last_modified_by := ${device};
      ${clear ? 'NEW.written_by := NULL;' : ''}
      IF TG_OP = 'INSERT' THEN
        NEW.first_written_at := stamp;
        NEW.first_written_by := NEW.last_modified_by;
      ELSE
        NEW.first_written_at := OLD.first_written_at;
        NEW.first_written_by := OLD.first_written_by;
      END IF;
      RETURN NEW;
    END
    $$`;
}

const SETTING = "NULLIF(current_setting('sync.device_id', true), '')";

export async function up(knex: Knex): Promise<void> {
  for (const table of SYNCED) await knex.schema.alterTable(table, (t) => t.text('written_by').nullable());
  await knex.raw(stamp(`coalesce(NULLIF(NEW.written_by, ''), ${SETTING})`, true));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(stamp(SETTING, false));
  for (const table of SYNCED) await knex.schema.alterTable(table, (t) => t.dropColumn('written_by'));
}
