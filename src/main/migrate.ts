import { describeTarget, openDatabase } from '../adapters/postgres/connection';
import { migrateToLatest } from '../adapters/postgres/migrations';
import { ConfigError, loadConfig } from './config';

/** `npm run migrate`: applies pending migrations and exits. */
try {
  const config = loadConfig();
  const db = openDatabase(config.database);
  try {
    const applied = await migrateToLatest(db);
    console.log(applied.length ? `applied ${applied.join(', ')} to ${describeTarget(config.database)}` : `${describeTarget(config.database)} is up to date`);
  } finally {
    await db.destroy();
  }
} catch (e) {
  console.error(e instanceof ConfigError ? `Configuration error: ${e.message}` : e);
  process.exit(1);
}
