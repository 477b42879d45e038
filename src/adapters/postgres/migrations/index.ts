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
import * as m010 from './010-written-by';
import * as m011 from './011-sync-stats-minutes';

/**
 * Migrations in order, imported (not globbed) so they run the same under tsx, tests and bundlers.
 * Each entry has a `file`, as knex's own folder source gives: the knex CLI prints pending
 * migrations by that property (`npm run knex -- migrate:status`).
 */
interface Entry {
  readonly file: string;
  readonly migration: Knex.Migration;
}
const MIGRATIONS: readonly Entry[] = [
  { file: '001-sync-tables', migration: m001 },
  { file: '002-sync-logs', migration: m002 },
  { file: '003-reencrypt-without-stamp', migration: m003 },
  { file: '004-first-written-by', migration: m004 },
  { file: '005-stamp-once-per-statement', migration: m005 },
  { file: '006-retention', migration: m006 },
  { file: '007-encrypt-derived-text', migration: m007 },
  { file: '008-field-key-fingerprints', migration: m008 },
  { file: '009-stored-bytes', migration: m009 },
  { file: '010-written-by', migration: m010 },
  { file: '011-sync-stats-minutes', migration: m011 },
];

export const migrationSource: Knex.MigrationSource<Entry> = {
  getMigrations: async () => [...MIGRATIONS],
  getMigrationName: (entry) => entry.file,
  getMigration: async (entry) => entry.migration,
};

export async function migrateToLatest(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}
