import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDatabase, LocalWriteError } from '../../../mobile/src/local-database';
import { checkpointsAdopted, LOCAL_SCHEMA_VERSION, LocalSchemaError, LocalSchemaTooNewError, defineLocalSchema, migrateLocalDatabase, type LocalMigration } from '../../../mobile/src/local-schema';
import { TABLES, columnNames, type TableSpec } from '../../../src/domain';
import { ManualTimers } from '../../fakes/manual-timers';
import { openDriver, openLocal, thrown, type LocalFixture } from './local-fixture';

/** The app's side of the local database: writes and their sync bookkeeping, reads, validation, migrations. */
describe('LocalDatabase: local writes', () => {
  let f: LocalFixture;
  let changes: string[];
  beforeEach(async () => {
    f = await openLocal();
    changes = [];
    f.local.onChange((e) => e.source === 'local' && changes.push(e.table));
  });
  afterEach(() => f.driver.close());

  const TODO_COLUMNS = 'thought_id,description,state,priority,deadline,completed_at,project_id';
  /** Marks a row as on the server, as a successful push does. */
  const synced = async (table: string, id: string) => {
    const [row] = await f.local.pendingBatch(table, 0, 1000).then((b) => b.filter((r) => r.record['id'] === id));
    await f.local.markPushed(table, [row!], 1_000);
  };

  it('creates a row with its defaults and created_at from the clock, every column marked changed', async () => {
    const created = await f.local.create('todos', { id: 't1', description: 'renew passport' });
    expect(created).to.deep.equal({
      id: 't1',
      thought_id: null,
      description: 'renew passport',
      state: 'todo',
      priority: 'medium',
      deadline: null,
      completed_at: null,
      project_id: null,
      created_at: f.timers.now(),
      last_modified_at: null,
    });
    expect(await f.local.get('todos', 't1')).to.deep.equal(created);
    expect(await f.bookkeeping('todos', 't1')).to.deep.equal({ _changed: TODO_COLUMNS, _status: 'active', _version: 1, last_modified_at: null });
    expect(changes).to.deep.equal(['todos']);
  });

  it('gives a row without an id one from the id source, and keeps a client-supplied created_at', async () => {
    const created = await f.local.create('ideas', { text: 'no id given', created_at: 42 });
    expect(created['id']).to.equal('gen-1');
    expect(await f.local.get('ideas', 'gen-1')).to.include({ text: 'no id given', created_at: 42 });
  });

  it('reads booleans back as booleans', async () => {
    await f.local.create('projects', { id: 'p1', name: 'home', archived: true });
    await f.local.create('projects', { id: 'p2', name: 'work' });
    expect((await f.local.query('projects', { orderBy: 'id' })).map((p) => p['archived'])).to.deep.equal([true, false]);
    expect((await f.local.query('projects', { where: { archived: true } })).map((p) => p['id'])).to.deep.equal(['p1']);
  });

  it('adds each updated column to _changed and bumps _version on every write', async () => {
    await f.local.create('todos', { id: 't1', description: 'draft' });
    await synced('todos', 't1');
    expect(await f.bookkeeping('todos', 't1')).to.include({ _changed: '', _version: 1 });
    const updated = await f.local.update('todos', 't1', { description: 'final' });
    expect(updated).to.include({ description: 'final', state: 'todo' });
    expect(await f.bookkeeping('todos', 't1')).to.include({ _changed: 'description', _version: 2 });
    await f.local.update('todos', 't1', { state: 'done', completed_at: 5, description: 'final!' });
    expect(await f.bookkeeping('todos', 't1')).to.include({ _changed: 'description,state,completed_at', _version: 3 });
    expect(changes).to.deep.equal(['todos', 'todos', 'todos']);
  });

  it('deletes softly: the row is kept as deleted, gone from get and query', async () => {
    await f.local.create('ideas', { id: 'i1', text: 'gone soon' });
    await f.local.create('ideas', { id: 'i2', text: 'stays' });
    await f.local.delete('ideas', 'i1');
    expect(await f.local.get('ideas', 'i1')).to.equal(null);
    expect((await f.local.query('ideas')).map((r) => r['id'])).to.deep.equal(['i2']);
    expect(await f.bookkeeping('ideas', 'i1')).to.include({ _status: 'deleted', _version: 2 });
    expect(changes).to.deep.equal(['ideas', 'ideas', 'ideas']);
  });

  it('refuses to update a row that does not exist or was deleted', async () => {
    await f.local.create('ideas', { id: 'i1', text: 'x' });
    await f.local.delete('ideas', 'i1');
    for (const id of ['i1', 'never']) {
      const e = await thrown(() => f.local.update('ideas', id, { text: 'y' }));
      expect(e).to.be.instanceOf(LocalWriteError);
      expect((e as LocalWriteError).details).to.deep.equal([{ table: 'ideas', id, reason: 'not found' }]);
    }
    expect(await f.bookkeeping('ideas', 'i1')).to.include({ _status: 'deleted', _version: 2 });
  });

  it('queries with where (null included), order, direction and limit', async () => {
    await f.local.create('todos', { id: 'a', description: 'a', deadline: 30, project_id: 'p' });
    await f.local.create('todos', { id: 'b', description: 'b', deadline: 10 });
    await f.local.create('todos', { id: 'c', description: 'c', deadline: 20, project_id: 'p' });
    const ids = async (o: Parameters<typeof f.local.query>[1]) => (await f.local.query('todos', o)).map((r) => r['id']);
    expect(await ids({ where: { project_id: 'p' }, orderBy: 'deadline' })).to.deep.equal(['c', 'a']);
    expect(await ids({ where: { project_id: null } })).to.deep.equal(['b']);
    expect(await ids({ orderBy: 'deadline', descending: true, limit: 2 })).to.deep.equal(['a', 'c']);
  });

  describe('validation', () => {
    const rowCount = async (table: string) => Number((await f.driver.execute(`SELECT count(*) AS n FROM "${table}"`))[0]!['n']);

    it('refuses an unknown table with a detail naming it', async () => {
      for (const attempt of [() => f.local.create('notes', { text: 'x' }), () => f.local.update('notes', 'n1', { text: 'x' }), () => f.local.get('notes', 'n1'), () => f.local.query('notes')]) {
        const e = await thrown(attempt);
        expect(e).to.be.instanceOf(LocalWriteError);
        expect((e as LocalWriteError).details).to.deep.equal([{ table: 'notes', reason: 'unknown table' }]);
      }
    });

    it('refuses unknown columns, sync columns included, on create and update', async () => {
      const e = await thrown(() => f.local.create('ideas', { id: 'i1', text: 'x', colour: 'red', _status: 'deleted' }));
      expect((e as LocalWriteError).details.map((d) => [d.table, d.id, d.column])).to.deep.equal([
        ['ideas', 'i1', 'colour'],
        ['ideas', 'i1', '_status'],
      ]);
      await f.local.create('ideas', { id: 'i2', text: 'x' });
      const u = await thrown(() => f.local.update('ideas', 'i2', { last_modified_at: 5 }));
      expect((u as LocalWriteError).details.map((d) => d.column)).to.deep.equal(['last_modified_at']);
      expect(await f.local.get('ideas', 'i2')).to.include({ last_modified_at: null });
    });

    it('refuses values of the wrong type or outside the allowed set, naming each column, and writes nothing', async () => {
      const e = await thrown(() => f.local.create('todos', { id: 't1', description: 'x', deadline: 'tomorrow', priority: 'urgent', completed_at: 1.5 }));
      expect(e).to.be.instanceOf(LocalWriteError);
      expect((e as LocalWriteError).details.map((d) => d.column).sort()).to.deep.equal(['completed_at', 'deadline', 'priority']);
      for (const d of (e as LocalWriteError).details) expect(d).to.include({ table: 'todos', id: 't1' }).and.to.have.property('reason').that.is.a('string').and.not.empty;
      const b = await thrown(() => f.local.create('projects', { id: 'p1', name: 'x', archived: 'yes' }));
      expect((b as LocalWriteError).details.map((d) => d.column)).to.deep.equal(['archived']);
      expect([await rowCount('todos'), await rowCount('projects'), changes]).to.deep.equal([0, 0, []]);
    });

    it('refuses a new row without a required column', async () => {
      const e = await thrown(() => f.local.create('thoughts', { id: 'th1', summary: 'no capture' }));
      expect(e).to.be.instanceOf(LocalWriteError);
      expect((e as LocalWriteError).details).to.have.length(1);
      expect((e as LocalWriteError).details[0]).to.include({ table: 'thoughts', id: 'th1', column: 'capture_id' });
      expect((e as LocalWriteError).details[0]!.reason).to.match(/required/);
      expect(await rowCount('thoughts')).to.equal(0);
    });

    it('refuses a null in a required column on update, and a second row with the same id', async () => {
      await f.local.create('ideas', { id: 'i1', text: 'x' });
      const u = await thrown(() => f.local.update('ideas', 'i1', { text: null }));
      expect((u as LocalWriteError).details.map((d) => d.column)).to.deep.equal(['text']);
      const dup = await thrown(() => f.local.create('ideas', { id: 'i1', text: 'again' }));
      expect(dup).to.be.instanceOf(LocalWriteError);
      expect(await f.local.get('ideas', 'i1')).to.include({ text: 'x' });
      expect(await f.bookkeeping('ideas', 'i1')).to.include({ _version: 1 });
    });

    it('refuses a query on an unknown column', async () => {
      expect(await thrown(() => f.local.query('ideas', { where: { colour: 'red' } }))).to.be.instanceOf(LocalWriteError);
      expect(await thrown(() => f.local.query('ideas', { orderBy: 'colour' }))).to.be.instanceOf(LocalWriteError);
    });
  });
});

describe('local schema migrations', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const userVersion = async (driver: ReturnType<typeof openDriver>) => Number((await driver.execute('SELECT user_version AS v FROM pragma_user_version'))[0]!['v']);
  const tableNames = async (driver: ReturnType<typeof openDriver>) =>
    (await driver.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")).map((r) => r['name']);

  it('creates every synced table from the domain schema, with the bookkeeping columns, and sets user_version', async () => {
    const driver = openDriver();
    try {
      expect(await migrateLocalDatabase(driver, undefined, () => 'instance-1')).to.deep.equal({ from: 0, to: LOCAL_SCHEMA_VERSION, pull: [], instanceId: 'instance-1', instanceCreated: true, adoptCheckpoints: false, userId: null });
      expect(await userVersion(driver)).to.equal(LOCAL_SCHEMA_VERSION);
      expect(await tableNames(driver)).to.deep.equal([...TABLES.map((t) => t.name), 'sync_meta', 'sync_pending_pulls', 'sync_quarantine'].sort());
      for (const t of TABLES) {
        const columns = await driver.execute(`SELECT name, "notnull" AS nn FROM pragma_table_info('${t.name}') ORDER BY cid`);
        expect(columns.map((c) => c['name']), t.name).to.deep.equal(['id', ...columnNames(t), 'created_at', 'last_modified_at', '_status', '_changed', '_version']);
        for (const c of columnNames(t)) expect(columns.find((x) => x['name'] === c)!['nn'], `${t.name}.${c} NOT NULL`).to.equal(t.columns[c]!.nullable ? 0 : 1);
      }
    } finally {
      await driver.close();
    }
  });

  it('leaves a current database as it is when the app opens it again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'local-schema-'));
    dirs.push(dir);
    const first = openDriver(dir, 'app.db');
    const made = await migrateLocalDatabase(first);
    await first.execute(`INSERT INTO ideas (id, text, created_at, _changed) VALUES ('i1', 'kept', 1, 'text')`);
    await first.close();

    const again = openDriver(dir, 'app.db');
    try {
      // The instance id is the one made with the database: the step that makes it runs again as a no-op.
      expect(await migrateLocalDatabase(again, undefined, () => 'not-this-one')).to.deep.equal({ from: LOCAL_SCHEMA_VERSION, to: LOCAL_SCHEMA_VERSION, pull: [], instanceId: made.instanceId, instanceCreated: false, adoptCheckpoints: false, userId: null });
      expect(await again.execute('SELECT id, text, _changed FROM ideas')).to.deep.equal([{ id: 'i1', text: 'kept', _changed: 'text' }]);
    } finally {
      await again.close();
    }
  });

  it('gives a database from before instance ids one on its next open, its rows and version kept', async () => {
    const driver = openDriver();
    try {
      await migrateLocalDatabase(driver);
      await driver.execute(`INSERT INTO ideas (id, text, created_at, _changed) VALUES ('i1', 'kept', 1, 'text')`);
      await driver.execute('DROP TABLE sync_meta'); // as an older app version left it
      const opened = await migrateLocalDatabase(driver, undefined, () => 'instance-2');
      expect(opened).to.deep.equal({ from: LOCAL_SCHEMA_VERSION, to: LOCAL_SCHEMA_VERSION, pull: [], instanceId: 'instance-2', instanceCreated: true, adoptCheckpoints: true, userId: null });
      // Until the client has taken over the checkpoints of before, every open says they are to be taken over.
      expect(await migrateLocalDatabase(driver, undefined, () => 'instance-3')).to.deep.include({ instanceId: 'instance-2', instanceCreated: false, adoptCheckpoints: true });
      await checkpointsAdopted(driver);
      expect(await migrateLocalDatabase(driver, undefined, () => 'instance-4')).to.deep.include({ instanceId: 'instance-2', adoptCheckpoints: false });
      expect(await driver.execute('SELECT id FROM ideas')).to.deep.equal([{ id: 'i1' }]);
    } finally {
      await driver.close();
    }
  });

  it('refuses a database from a newer app version and leaves it untouched', async () => {
    const driver = openDriver();
    try {
      await driver.execute(`PRAGMA user_version = ${LOCAL_SCHEMA_VERSION + 1}`);
      const e = await thrown(() => migrateLocalDatabase(driver));
      expect(e).to.be.instanceOf(LocalSchemaTooNewError);
      expect(await userVersion(driver)).to.equal(LOCAL_SCHEMA_VERSION + 1);
      expect(await tableNames(driver)).to.deep.equal([]);
    } finally {
      await driver.close();
    }
  });

  describe('upgrading with a step that adds a column', () => {
    /** The domain's tables without `table.column`: an older app version's. */
    const without = (table: string, ...columns: string[]): TableSpec[] =>
      TABLES.map((t) => (t.name !== table ? t : { ...t, columns: Object.fromEntries(Object.entries(t.columns).filter(([c]) => !columns.includes(c))) }));
    const v1 = defineLocalSchema({ tables: without('projects', 'color') });
    const addColor: LocalMigration = { toVersion: 2, sql: ['ALTER TABLE "projects" ADD COLUMN "color" TEXT'], pullColumns: [{ table: 'projects', columns: ['color'] }] };
    const v2 = defineLocalSchema({ migrations: [addColor] });

    it('adds the column in place, keeps pending rows and their _changed, and owes the column a pull until told it arrived', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'local-schema-'));
      dirs.push(dir);
      const old = openDriver(dir, 'app.db');
      expect(await migrateLocalDatabase(old, v1)).to.deep.include({ from: 0, to: 1, pull: [] });
      const local = new LocalDatabase(old, new ManualTimers(), () => 'p-new', v1.tables);
      await local.create('projects', { id: 'p-new', name: 'created offline' });
      await old.execute(`INSERT INTO projects (id, name, archived, created_at, last_modified_at, _changed) VALUES ('p-synced', 'renamed offline', 0, 1, 5, 'name')`);
      const before = await old.execute('SELECT id, name, _status, _changed, _version FROM projects ORDER BY id');
      expect(await old.execute("SELECT name FROM pragma_table_info('projects') WHERE name = 'color'")).to.deep.equal([]);
      await old.close();

      const upgraded = openDriver(dir, 'app.db');
      try {
        const owed = [{ table: 'projects', from: 1, columns: ['color'] }];
        expect(await migrateLocalDatabase(upgraded, v2)).to.deep.include({ from: 1, to: 2, pull: owed });
        expect(await userVersion(upgraded)).to.equal(2);
        expect(await upgraded.execute('SELECT id, name, _status, _changed, _version FROM projects ORDER BY id'), 'pending rows as they were').to.deep.equal(before);
        expect(await upgraded.execute('SELECT color FROM projects')).to.deep.equal([{ color: null }, { color: null }]);
        const local2 = new LocalDatabase(upgraded, new ManualTimers(), () => 'x', v2.tables);
        expect(await local2.countPending()).to.equal(2);
        // Opened again before any sync: still owed, once.
        expect(await migrateLocalDatabase(upgraded, v2)).to.deep.include({ from: 2, to: 2, pull: owed });
        expect(await local2.pendingPull('projects')).to.deep.equal(owed[0]);
        await local2.pullCompleted('projects');
        expect(await local2.pendingPull('projects')).to.equal(null);
        expect(await migrateLocalDatabase(upgraded, v2)).to.deep.include({ from: 2, to: 2, pull: [] });
      } finally {
        await upgraded.close();
      }
    });

    it('upgrading over two steps owes each table its columns once, from the version it started at', async () => {
      const driver = openDriver();
      try {
        await migrateLocalDatabase(driver, defineLocalSchema({ tables: without('todos', 'deadline', 'project_id') }));
        const steps: LocalMigration[] = [
          { toVersion: 2, sql: ['ALTER TABLE "todos" ADD COLUMN "deadline" INTEGER'], pullColumns: [{ table: 'todos', columns: ['deadline'] }] },
          { toVersion: 3, sql: ['ALTER TABLE "todos" ADD COLUMN "project_id" TEXT'], pullColumns: [{ table: 'todos', columns: ['project_id'] }] },
        ];
        expect(await migrateLocalDatabase(driver, defineLocalSchema({ migrations: steps }))).to.deep.include({ from: 1, to: 3, pull: [{ table: 'todos', from: 1, columns: ['deadline', 'project_id'] }] });
      } finally {
        await driver.close();
      }
    });

    it('refuses a step that does not add a column the schema stores, and leaves the database at its version (bad input: the step without its ALTER)', async () => {
      const driver = openDriver();
      try {
        await migrateLocalDatabase(driver, v1);
        const e = await thrown(() => migrateLocalDatabase(driver, defineLocalSchema({ migrations: [{ ...addColor, sql: [] }] })));
        expect(e).to.be.instanceOf(LocalSchemaError);
        expect(e.message).to.match(/projects lacks color/);
        expect(await userVersion(driver)).to.equal(1);
        expect(await driver.execute('SELECT * FROM sync_pending_pulls')).to.deep.equal([]);
      } finally {
        await driver.close();
      }
    });

    it('refuses a bad schema definition at once, with what is wrong', () => {
      const bad: Array<[string, () => unknown, RegExp]> = [
        ['a step numbered out of order', () => defineLocalSchema({ migrations: [{ ...addColor, toVersion: 3 }] }), /toVersion 2, not 3/],
        ['a pull of a column the schema does not store', () => defineLocalSchema({ tables: v1.tables, migrations: [addColor] }), /projects\.color/],
        ['a column the server does not have', () => defineLocalSchema({ tables: [{ ...TABLES[0]!, columns: { ...TABLES[0]!.columns, mood: { type: 'text', nullable: true } } }] }), /captures\.mood/],
        ['a required column left out', () => defineLocalSchema({ tables: without('ideas', 'text') }), /ideas\.text is required/],
        ['a table the server does not have', () => defineLocalSchema({ tables: [{ name: 'notes', priority: 9, columns: {} }] }), /"notes"/],
      ];
      for (const [what, define, message] of bad) expect(define, what).to.throw(LocalSchemaError, message);
    });
  });
});
