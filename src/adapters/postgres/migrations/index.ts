import type { Knex } from 'knex';
import * as m001 from './001-sync-tables';
import * as m002 from './002-sync-logs';
import * as m003 from './003-reencrypt-without-stamp';
import * as m004 from './004-first-written-by';
import * as m005 from './005-stamp-once-per-statement';
import * as m006 from './006-retention';
import * as m007 from './007-encrypt-derived-text';
import * as m008 from './008-field-key-fingerprints';
import * as m009 from './009-stored-bytes';

/** Migrations in order, imported (not globbed) so they run the same under tsx, tests and bundlers. */
const MIGRATIONS: ReadonlyArray<readonly [string, Knex.Migration]> = [
  ['001-sync-tables', m001],
  ['002-sync-logs', m002],
  ['003-reencrypt-without-stamp', m003],
  ['004-first-written-by', m004],
  ['005-stamp-once-per-statement', m005],
  ['006-retention', m006],
  ['007-encrypt-derived-text', m007],
  ['008-field-key-fingerprints', m008],
  ['009-stored-bytes', m009],
];

export const migrationSource: Knex.MigrationSource<readonly [string, Knex.Migration]> = {
  getMigrations: async () => [...MIGRATIONS],
  getMigrationName: ([name]) => name,
  getMigration: async ([, migration]) => migration,
};

export async function migrateToLatest(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}
