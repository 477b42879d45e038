import type { Knex } from 'knex';

/**
 * Re-encryption (npm run reencrypt) rewrites ciphertexts, not values: it must not give rows new
 * stamps, or every device would download every capture again. A transaction that sets
 * `sync.skip_stamp` (transaction-locally) updates rows without stamping them.
 */
const STAMP = (skip: boolean) => `
  CREATE OR REPLACE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    stamp bigint;
  BEGIN
    ${skip ? "IF TG_OP = 'UPDATE' AND current_setting('sync.skip_stamp', true) = 'on' THEN RETURN NEW; END IF;" : ''}
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
  $$`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(STAMP(true));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(STAMP(false));
}
