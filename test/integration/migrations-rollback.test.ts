import { expect } from 'chai';
import type { Knex } from 'knex';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { migrationSource } from '../../src/adapters/postgres/migrations';

/**
 * Every migration can be rolled back one at a time (what `npm run knex -- migrate:down` does) and
 * the database still works at each step: a row written after the rollback is stamped. Then the
 * migrations apply again from nothing. Run on a database of its own: a fresh PGlite, and a
 * fresh PostgreSQL database when DATABASE_URL is set.
 */
async function expectStampedWrite(db: Knex, step: string): Promise<void> {
  const user = `rollback-${step}`;
  await db('ideas').insert({ user_id: user, id: 'i1', text: 'a', created_at: 1, last_modified_at: 0, first_written_at: 0 });
  const [inserted] = await db('ideas').where({ user_id: user, id: 'i1' });
  await db('ideas').where({ user_id: user, id: 'i1' }).update({ text: 'b' });
  const [updated] = await db('ideas').where({ user_id: user, id: 'i1' });
  expect(Number(inserted.last_modified_at), `stamp after rolling back ${step}`).to.be.greaterThan(0);
  expect(Number(updated.last_modified_at), `new stamp on update after rolling back ${step}`).to.be.greaterThan(Number(inserted.last_modified_at));
  expect(Number(updated.first_written_at)).to.equal(Number(inserted.last_modified_at));
}

async function walk(db: Knex): Promise<void> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  const all = (await migrationSource.getMigrations([])).map((m) => migrationSource.getMigrationName(m));
  expect(applied).to.deep.equal(all);
  await expectStampedWrite(db, 'nothing');
  for (const name of [...applied].reverse()) {
    await db.migrate.down({ migrationSource });
    if (name !== '001-sync-tables') await expectStampedWrite(db, name);
  }
  const left = await db.raw(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE 'knex_%'`);
  expect(left.rows, 'every table of the migrations is gone').to.deep.equal([]);
  const [, again] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  expect(again).to.deep.equal(applied);
  await expectStampedWrite(db, 'a second run');
}

describe('rolling the migrations back one by one', function () {
  this.timeout(300_000);

  it('keeps writes stamped at every step, then applies them again [pglite]', async () => {
    const db = openDatabase({ kind: 'pglite', dataDir: 'memory://' });
    try {
      await walk(db);
    } finally {
      await db.destroy();
    }
  });

  it('keeps writes stamped at every step, then applies them again [postgres]', async function () {
    const url = process.env['DATABASE_URL'];
    if (!url) this.skip(); // PostgreSQL runs only with DATABASE_URL (CI sets it)
    const name = `sync_rollback_${process.pid}_${Date.now().toString(36)}`;
    const admin = openDatabase({ kind: 'postgres', url: url!, poolMax: 1 });
    await admin.raw(`CREATE DATABASE ${name}`);
    const own = new URL(url!);
    own.pathname = `/${name}`;
    const db = openDatabase({ kind: 'postgres', url: own.href, poolMax: 2 });
    try {
      await walk(db);
    } finally {
      await db.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    }
  });
});
