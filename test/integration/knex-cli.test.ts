import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { exitWithin, spawnCommand } from '../support/processes';

/**
 * The knex CLI with the top-level knexfile.ts, run by the commands docs/operations.md gives, on a
 * database of its own: PGlite in a fresh folder always, and a fresh PostgreSQL database when
 * DATABASE_URL is set. It lists, applies and rolls back the project's migrations.
 */
const NAMES = [
  '001-sync-tables',
  '002-sync-logs',
  '003-reencrypt-without-stamp',
  '004-first-written-by',
  '005-stamp-once-per-statement',
  '006-retention',
  '007-encrypt-derived-text',
  '008-field-key-fingerprints',
  '009-stored-bytes',
  '010-written-by',
  '011-sync-stats-minutes',
];
const N = NAMES.length;
const listed = (heading: RegExp) => new RegExp(`${heading.source}\\s+${NAMES.join('\\s+')}`);

async function cli(args: string[], env: Record<string, string>): Promise<string> {
  const s = spawnCommand(args[0]!, args.slice(1), process.cwd(), env);
  const exit = await exitWithin(s, 180_000);
  expect(exit.code, `${args.join(' ')}:\n${s.output()}`).to.equal(0);
  return s.output();
}

describe('the knex CLI (knexfile.ts)', function () {
  this.timeout(900_000);
  const targets: Array<[string, () => Promise<{ env: Record<string, string>; tables: () => Promise<string[]>; done: () => Promise<void> }>]> = [
    [
      'pglite',
      async () => {
        const dir = mkdtempSync(join(tmpdir(), 'sync-knex-cli-'));
        return { env: { PGLITE_DATA_DIR: join(dir, 'pglite') }, tables: async () => [], done: async () => rmSync(dir, { recursive: true, force: true }) };
      },
    ],
    [
      'postgres',
      async () => {
        const url = process.env['DATABASE_URL']!;
        const name = `sync_knex_cli_${process.pid}_${Date.now().toString(36)}`;
        const admin = openDatabase({ kind: 'postgres', url, poolMax: 1 });
        await admin.raw(`CREATE DATABASE ${name}`);
        const own = new URL(url);
        own.pathname = `/${name}`;
        const db = openDatabase({ kind: 'postgres', url: own.href, poolMax: 1 });
        return {
          env: { DATABASE_URL: own.href },
          tables: async () => ((await db.raw(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)).rows as Array<{ tablename: string }>).map((r) => r.tablename),
          done: async () => {
            await db.destroy();
            await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
            await admin.destroy();
          },
        };
      },
    ],
  ];

  for (const [name, open] of targets) {
    it(`lists, applies and rolls back the migrations [${name}]`, async function () {
      if (name === 'postgres' && !process.env['DATABASE_URL']) this.skip(); // PostgreSQL runs only with DATABASE_URL (CI sets it)
      const target = await open();
      try {
        expect(await cli(['npm', 'run', '-s', 'knex', '--', 'migrate:status'], target.env)).to.match(listed(new RegExp(`Found ${N} Pending Migration file/files\\.`)));

        expect(await cli(['npm', 'run', '-s', 'migrate'], target.env)).to.contain(`Batch 1 run: ${N} migrations`);
        if (name === 'postgres') expect(await target.tables()).to.include.members(['captures', 'ideas', 'sync_logs', 'knex_migrations']);
        // The plain npx form: the CLI finds knexfile.js, which loads knexfile.ts (docs/operations.md).
        const status = await cli(['npx', 'knex', 'migrate:status'], target.env);
        expect(status).to.match(listed(new RegExp(`Found ${N} Completed Migration file/files\\.`)));
        expect(status).to.contain('No Pending Migration files Found.');

        expect(await cli(['npm', 'run', '-s', 'knex', '--', 'migrate:rollback'], target.env)).to.contain(`Batch 1 rolled back: ${N} migrations`);
        if (name === 'postgres') expect(await target.tables()).to.deep.equal(['knex_migrations', 'knex_migrations_lock']);
        expect(await cli(['npm', 'run', '-s', 'knex', '--', 'migrate:status'], target.env)).to.match(listed(new RegExp(`No Completed Migration files Found\\.\\s+Found ${N} Pending Migration file/files\\.`)));
      } finally {
        await target.done();
      }
    });
  }
});
