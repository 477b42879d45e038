import type { Knex } from 'knex';

/**
 * The stamp without one `sync_users` write per row. Until now every stamped row upserted the
 * user's `sync_users` row: 1,000 rows in one statement made 1,000 versions of that row inside one
 * transaction (2,000 for an INSERT … ON CONFLICT DO UPDATE, whose BEFORE INSERT and BEFORE UPDATE
 * triggers both fire), and each lookup walked the growing chain of versions: two thirds of a
 * push's database time.
 *
 * Now the first stamped row of a statement upserts `sync_users` as before (that takes the user's
 * row lock, held until commit, and reads the newest stamp under it); the following rows of the
 * same user take `max(now_ms, previous + 1)` from a transaction-local setting, and an AFTER …
 * FOR EACH STATEMENT trigger writes the last stamp back to `sync_users` before the statement
 * ends. Stamps stay unique and increasing per user, `sync_users.last_ts` is the newest stamp
 * whenever a statement is over, and the lock is taken exactly as before, so the pull cursor
 * guarantee (docs/protocol.md, "The stamp") holds unchanged.
 *
 * The setting is `sync.stamp_cache` = '<last stamp>:<user_id>'. It only lives within a statement
 * (cleared by the flush; a failed statement's setting is rolled back with it). A row of another
 * user writes the pending stamp back first, then locks and reads that user as before.
 */
const SYNCED = ['captures', 'todos', 'thoughts', 'ideas', 'projects'] as const;

const NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION sync_stamp_write_back() RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
      cached text := current_setting('sync.stamp_cache', true);
      stamp bigint;
    BEGIN
      IF cached IS NULL OR cached = '' THEN RETURN; END IF;
      PERFORM set_config('sync.stamp_cache', '', true);
      stamp := split_part(cached, ':', 1)::bigint;
      UPDATE sync_users SET last_ts = stamp WHERE user_id = substr(cached, length(stamp::text) + 2) AND last_ts < stamp;
    END
    $$`);
  await knex.raw(`
    CREATE FUNCTION sync_stamp_flush() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM sync_stamp_write_back();
      RETURN NULL;
    END
    $$`);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      cached text;
      previous bigint;
      stamp bigint;
    BEGIN
      IF TG_OP = 'UPDATE' AND current_setting('sync.skip_stamp', true) = 'on' THEN RETURN NEW; END IF;
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
  for (const table of SYNCED) {
    await knex.raw(`CREATE TRIGGER ${table}_sync_stamp_flush AFTER INSERT OR UPDATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION sync_stamp_flush()`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of SYNCED) await knex.raw(`DROP TRIGGER IF EXISTS ${table}_sync_stamp_flush ON ${table}`);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      stamp bigint;
    BEGIN
      IF TG_OP = 'UPDATE' AND current_setting('sync.skip_stamp', true) = 'on' THEN RETURN NEW; END IF;
      INSERT INTO sync_users AS u (user_id, last_ts)
        VALUES (NEW.user_id, ${NOW_MS})
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
  await knex.raw('DROP FUNCTION IF EXISTS sync_stamp_flush()');
  await knex.raw('DROP FUNCTION IF EXISTS sync_stamp_write_back()');
}
