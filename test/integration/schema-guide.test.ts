import { expect } from 'chai';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { exitWithin, processAlive, spawnCommand, waitForOutput } from '../support/processes';

/**
 * docs/schema.md, walked: its `guide=…` code blocks are applied, where the page says, to a copy
 * of the repository; the copy's own schema-drift test checks the migrations against the domain;
 * its server pushes and pulls the new column and table (stamps, created/updated, isolation,
 * schema versions); and its mobile local migration upgrades a database made by the current code.
 */
const repo = process.cwd();
const SECRET = 'schema-guide-secret-0123456789abcdef0123';

function guideBlocks(): Map<string, string> {
  const doc = readFileSync(join(repo, 'docs/schema.md'), 'utf8');
  const blocks = new Map<string, string>();
  for (const m of doc.matchAll(/^```ts guide=([\w-]+)[^\n]*\n([\s\S]*?)^```$/gm)) blocks.set(m[1]!, m[2]!);
  return blocks;
}

function edit(root: string, file: string, change: (text: string) => string): void {
  const path = join(root, file);
  const before = readFileSync(path, 'utf8');
  const after = change(before);
  expect(after, `the guide's edit of ${file} found its place`).to.not.equal(before);
  writeFileSync(path, after);
}

/** Inserts `text` right after the (single) occurrence of `anchor`. */
const insertAfter = (anchor: string, text: string) => (s: string) => {
  expect(s.split(anchor), `"${anchor}" once`).to.have.length(2);
  return s.replace(anchor, anchor + text);
};
/** Inserts `text` before the first `before` that follows `start`. */
const inside = (start: string, before: string, text: string) => (s: string) => {
  const from = s.indexOf(start);
  expect(from, `"${start}"`).to.be.at.least(0);
  const at = s.indexOf(before, from);
  return s.slice(0, at) + text + s.slice(at);
};

describe('docs/schema.md, walked on a copy of the repository', function () {
  this.timeout(600_000);
  let dir: string;
  let copy: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sync-schema-guide-'));
    copy = join(dir, 'repo');
    mkdirSync(copy);
    for (const part of ['src', 'mobile', 'test', 'docs', 'bench', 'demo', 'knexfile.ts', 'package.json', 'tsconfig.json', '.mocharc.cjs']) cpSync(join(repo, part), join(copy, part), { recursive: true });
    symlinkSync(join(repo, 'node_modules'), join(copy, 'node_modules'));

    const g = guideBlocks();
    for (const name of ['column-domain', 'column-migration', 'column-index-import', 'column-index-entry', 'column-local', 'table-domain', 'table-migration', 'table-index-import', 'table-index-entry', 'table-local']) {
      expect(g.has(name), `docs/schema.md has the block guide=${name}`).to.equal(true);
    }
    edit(copy, 'src/domain/schema.ts', insertAfter('      completed_at: optionalInteger(),\n', g.get('column-domain')!));
    edit(copy, 'src/domain/schema.ts', inside('const TABLE_LIST', '];\n\n/** Tables in sync priority order. */', g.get('table-domain')!));
    const migrations = 'src/adapters/postgres/migrations';
    writeFileSync(join(copy, migrations, '012-todos-estimate.ts'), g.get('column-migration')!);
    writeFileSync(join(copy, migrations, '013-bookmarks.ts'), g.get('table-migration')!);
    // After the last import of a migration, as the page says.
    edit(copy, `${migrations}/index.ts`, (s) => {
      const last = [...s.matchAll(/^import \* as m\d+ from '[^']+';\n/gm)].at(-1)!;
      return s.slice(0, last.index! + last[0].length) + g.get('column-index-import')! + g.get('table-index-import')! + s.slice(last.index! + last[0].length);
    });
    edit(copy, `${migrations}/index.ts`, inside('const MIGRATIONS', '];', g.get('column-index-entry')! + g.get('table-index-entry')!));
    edit(copy, 'mobile/src/local-schema.ts', (s) => s.replace('const MIGRATIONS: readonly LocalMigration[] = [];', `const MIGRATIONS: readonly LocalMigration[] = [\n${g.get('column-local')!}${g.get('table-local')!}];`));
    // The tests empty every table between cases (the page says so too).
    edit(copy, 'test/support/databases.ts', (s) => s.replace("const TABLES = ['captures',", "const TABLES = ['bookmarks', 'captures',"));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('typechecks', async () => {
    const s = spawnCommand(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit'], copy, {});
    expect((await exitWithin(s, 300_000)).code, s.output()).to.equal(0);
  });

  it("migrates to a schema the copy's drift test finds equal to its domain (keys, index, stamp triggers)", async () => {
    const s = spawnCommand(process.execPath, [join(repo, 'node_modules/mocha/bin/mocha.js'), '--reporter', 'spec', 'test/integration/schema-drift.test.ts'], copy, {});
    const exit = await exitWithin(s, 300_000);
    expect(exit.code, s.output()).to.equal(0);
    expect(s.output()).to.match(/✔ bookmarks: columns, types, nullability, defaults, keys, index and stamp trigger/);
    expect(s.output()).to.match(/✔ todos: columns/);
    expect(s.output()).to.match(/9 passing/);
  });

  it('serves the new column and table: push, pull, stamps, created then updated, isolation, schema version 3', async () => {
    const s = spawnCommand(process.execPath, ['--import', 'tsx', 'src/main/server.ts'], copy, {
      PORT: '0',
      PGLITE_DATA_DIR: 'memory://',
      JWT_SECRET: SECRET,
      FIELD_ENCRYPTION_KEYS: `k:${Buffer.alloc(32, 8).toString('base64')}`,
      SCHEMA_VERSION_MAX: '3',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'warn',
    });
    let pid = 0;
    try {
      const [, base] = await waitForOutput(s, /listening on (http:\/\/127\.0\.0\.1:\d+)/);
      pid = s.child.pid!;
      const as = (user: string) => ({ authorization: `Bearer ${jwt.sign({ sub: user }, SECRET, { expiresIn: 600 })}`, 'content-type': 'application/json', 'x-schema-version': '3' });
      const push = async (user: string, lastPulledAt: number | null, changes: object) => {
        const r = await fetch(`${base}/api/sync/push`, { method: 'POST', headers: as(user), body: JSON.stringify({ last_pulled_at: lastPulledAt, changes }) });
        expect(r.status, await r.clone().text()).to.equal(200);
        return (await r.json()) as { timestamp: number };
      };
      const pull = async (user: string, since: number, version = 3) => {
        const r = await fetch(`${base}/api/sync/pull?last_pulled_at=${since}&schema_version=${version}&tables=todos,bookmarks`, { headers: as(user) });
        return { status: r.status, body: (await r.json()) as any };
      };

      await push('ann', null, {
        todos: { created: [{ id: 't1', description: 'read', estimate_minutes: 25 }] },
        bookmarks: { created: [{ id: 'b1', url: 'https://example.org/a', title: 'A' }] },
      });
      const first = await pull('ann', 0);
      expect(first.status).to.equal(200);
      expect(first.body.changes.todos.created[0]).to.include({ id: 't1', estimate_minutes: 25 });
      const [b1] = first.body.changes.bookmarks.created;
      expect(b1).to.include({ id: 'b1', url: 'https://example.org/a', title: 'A', project_id: null });
      expect(b1.last_modified_at).to.be.a('number').and.to.be.at.most(first.body.timestamp);

      await push('ann', first.body.timestamp, { bookmarks: { updated: [{ id: 'b1', title: 'A, read' }] } });
      const next = await pull('ann', first.body.timestamp);
      expect(next.body.changes.bookmarks.created, 'first written before the cursor: updated, not created').to.deep.equal([]);
      expect(next.body.changes.bookmarks.updated[0]).to.include({ id: 'b1', title: 'A, read', url: 'https://example.org/a' });
      expect(next.body.changes.bookmarks.updated[0].last_modified_at).to.be.above(b1.last_modified_at);

      const other = await pull('bob', 0);
      expect(other.body.changes.bookmarks.created).to.deep.equal([]);
      expect(other.body.changes.todos.created).to.deep.equal([]);
      expect((await pull('ann', 0, 4)).status, 'schema version above SCHEMA_VERSION_MAX').to.equal(426);

      // A bad value in the new column is refused like any other (bad input: a string for an integer).
      const bad = await fetch(`${base}/api/sync/push`, { method: 'POST', headers: as('ann'), body: JSON.stringify({ changes: { todos: { created: [{ id: 't2', description: 'x', estimate_minutes: 'soon' }] } } }) });
      expect(bad.status).to.equal(400);
      expect(((await bad.json()) as any).error.details[0]).to.include({ table: 'todos', id: 't2', column: 'estimate_minutes' });
    } finally {
      s.child.kill('SIGKILL');
      if (pid && processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it("upgrades a device's database made by the current code (version 1) to version 3", async () => {
    const check = (root: string) => `
      import { open } from '@op-engineering/op-sqlite';
      import { OpSqliteDriver } from '${root}/mobile/src/adapters/op-sqlite-driver';
      import { migrateLocalDatabase } from '${root}/mobile/src/local-schema';
      const driver = new OpSqliteDriver(open({ name: 'app.db', location: process.argv[2] }) as never);
      const result = await migrateLocalDatabase(driver);
      const tables = await driver.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
      const todos = await driver.execute("SELECT name FROM pragma_table_info('todos')");
      await driver.close();
      console.log(JSON.stringify({ result, tables: tables.map((r) => r.name), todos: todos.map((r) => r.name) }));
    `;
    const db = join(dir, 'device');
    mkdirSync(db);
    const run = async (root: string) => {
      const script = join(copy, `check-${root === repo ? 'before' : 'after'}.mts`);
      writeFileSync(script, check(root));
      const s = spawnCommand(process.execPath, ['--import', 'tsx', script, db], copy, {});
      expect((await exitWithin(s, 120_000)).code, s.output()).to.equal(0);
      return JSON.parse(s.output().trim().split('\n').pop()!) as { result: { from: number; to: number; pull: unknown[] }; tables: string[]; todos: string[] };
    };
    const before = await run(repo);
    expect(before.result).to.deep.include({ from: 0, to: 1 });
    expect(before.tables).to.not.include('bookmarks');
    const upgraded = await run(copy);
    expect(upgraded.result, 'the new column is owed a pull with `migration`').to.deep.include({ from: 1, to: 3, pull: [{ table: 'todos', from: 1, columns: ['estimate_minutes'] }], instanceCreated: false });
    expect(upgraded.tables).to.include('bookmarks');
    expect(upgraded.todos).to.include('estimate_minutes');
  });
});
