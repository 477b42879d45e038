import type { Knex } from 'knex';
import { databaseConfig } from './src/adapters/postgres/connection';
import { migrationSource } from './src/adapters/postgres/migrations';
import { databaseTarget } from './src/main/config';

/**
 * The knex CLI's configuration: the database the server would use (DATABASE_URL, else the
 * embedded PGlite in PGLITE_DATA_DIR) and the project's migrations, which are listed in code (a
 * migration source), not found in a folder. The knex CLI cannot load a TypeScript file by itself
 * in this ES module package: `npm run knex -- migrate:status` runs it with tsx's loader
 * (docs/operations.md). The build also emits dist/knexfile.js for installs without tsx.
 */
const config: Knex.Config = {
  ...databaseConfig(databaseTarget()),
  migrations: { migrationSource },
};

export default config;
