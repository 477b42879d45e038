import { describeTarget, openDatabase } from '../adapters/postgres/connection';
import { migrateToLatest } from '../adapters/postgres/migrations';
import { ConfigError, databaseTarget } from './config';

/**
 * `node dist/main/migrate.js` (the built form; `npm run migrate` runs the knex CLI with the same
 * database and migrations): applies pending migrations and exits. It reads only the database
 * settings, so a migration job needs no JWT or encryption keys.
 */
try {
  const target = databaseTarget();
  const db = openDatabase(target);
  try {
    const applied = await migrateToLatest(db);
    console.log(applied.length ? `applied ${applied.join(', ')} to ${describeTarget(target)}` : `${describeTarget(target)} is up to date`);
  } finally {
    await db.destroy();
  }
} catch (e) {
  console.error(e instanceof ConfigError ? `Configuration error: ${e.message}` : e);
  process.exit(1);
}
