import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { createTable, schemaMigrations } from '@nozbe/watermelondb/Schema/migrations';
import { appSchema, type TableSchema } from '@nozbe/watermelondb';
import { TABLES, columnSpec } from '../../src/domain/schema';
import { describeEachDatabase } from '../support/databases';
import { deviceRows, openDevice, type Device } from '../support/device';
import { startTestServer, storedRows, type TestServer } from '../support/server';
import { pick, serverColumns, WatermelonDevice, watermelonLogger } from '../support/watermelondb-app';
import { capturesTable, ideasTable, projectsTable, thoughtsTable, todosTable } from '../support/watermelondb-schema';

/**
 * The stock WatermelonDB client against the real server: `synchronize()` from
 * `@nozbe/watermelondb/sync`, the LokiJS adapter in memory, and the glue of docs/watermelondb.md
 * (test/support/watermelondb-glue.ts), side by side with our own mobile client on OP-SQLite.
 */

/** What WatermelonDB logged through its logger: `synchronize()` reports recoverable sync errors there. */
const logged: { error: string[]; warn: string[] } = { error: [], warn: [] };
const original = { ...watermelonLogger };
function captureWatermelonLogs() {
  watermelonLogger.error = (...m: unknown[]) => void logged.error.push(m.map(String).join(' '));
  watermelonLogger.warn = (...m: unknown[]) => void logged.warn.push(m.map(String).join(' '));
  watermelonLogger.log = () => undefined;
}

/** Every request the glue made, as the server saw it. */
interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  deviceId: string | null;
  body?: any;
  /** A pull's answer, as the glue received it. */
  answer?: any;
}
function recordingFetch(seen: Seen[], loseAnswers: { push: number } = { push: 0 }): typeof fetch {
  return async (input, init) => {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    const entry: Seen = {
      method: init?.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      deviceId: headers.get('x-device-id'),
      ...(typeof init?.body === 'string' ? { body: JSON.parse(init.body) } : {}),
    };
    seen.push(entry);
    const res = await fetch(input, init);
    if (url.pathname.endsWith('/pull') && res.ok) entry.answer = await res.clone().json();
    if (url.pathname.endsWith('/push') && loseAnswers.push > 0) {
      loseAnswers.push--;
      throw new TypeError('fetch failed: the connection was reset before the answer arrived');
    }
    return res;
  };
}

describe('WatermelonDB app code of docs/watermelondb.md', () => {
  it('declares every server column under the same name, optional exactly where the server allows null', () => {
    const declared: Record<string, TableSchema> = { captures: capturesTable, todos: todosTable, thoughts: thoughtsTable, ideas: ideasTable, projects: projectsTable };
    const watermelonType = { text: 'string', json_array: 'string', integer: 'number', boolean: 'boolean' } as const;
    for (const table of TABLES) {
      const ours = declared[table.name]!;
      expect(Object.keys(ours.columns).sort(), table.name).to.deep.equal([...serverColumns(table.name), 'last_modified_at'].sort());
      for (const name of Object.keys(table.columns)) {
        const spec = columnSpec(table, name)!;
        expect(ours.columns[name]!.type, `${table.name}.${name}`).to.equal(watermelonType[spec.type]);
        expect(ours.columns[name]!.isOptional === true, `${table.name}.${name} optional`).to.equal(spec.nullable);
      }
      expect(ours.columns['created_at'], `${table.name}.created_at`).to.include({ type: 'number' }).and.not.have.property('isOptional');
      expect(ours.columns['last_modified_at'], `${table.name}.last_modified_at`).to.include({ type: 'number', isOptional: true });
    }
  });

  it('docs/watermelondb.md shows the tested glue and schema character for character', () => {
    const doc = readFileSync(new URL('../../docs/watermelondb.md', import.meta.url), 'utf8');
    for (const file of ['watermelondb-glue.ts', 'watermelondb-schema.ts']) {
      const code = readFileSync(new URL(`../support/${file}`, import.meta.url), 'utf8');
      expect(doc.includes('```ts\n' + code + '```\n'), `docs/watermelondb.md shows test/support/${file} as is`).to.equal(true);
    }
  });
});

describeEachDatabase('WatermelonDB synchronize() ↔ server', (ctx) => {
  let server: TestServer;
  const mobiles: Device[] = [];
  before(async () => {
    captureWatermelonLogs();
    // Small pages, so every pull of the stock client goes through the glue's has_more loop.
    server = await startTestServer(ctx.database.db, { SYNC_PULL_LIMIT: '3', SCHEMA_VERSION_MAX: '2' });
  });
  after(async () => {
    Object.assign(watermelonLogger, original);
    await server.close();
  });
  beforeEach(() => {
    logged.error.length = 0;
    logged.warn.length = 0;
  });
  afterEach(async () => {
    for (const d of mobiles.splice(0)) await d.client.close().catch(() => undefined);
  });
  const mobile = async (user: string) => {
    const d = await openDevice(server, user);
    mobiles.push(d);
    return d;
  };
  async function syncMobile(d: Device) {
    const r = await d.client.sync();
    if (r.isErr()) throw new Error(`mobile sync failed: ${JSON.stringify(r.error)}`);
  }
  /** The server's view: a fresh first sync over REST (every page), live rows by table, sorted by id. */
  async function serverView(user: string): Promise<Record<string, Record<string, unknown>[]>> {
    const { pages } = await server.client(user).pullAll(null);
    const out: Record<string, Record<string, unknown>[]> = {};
    for (const t of TABLES) {
      out[t.name] = pages
        .flatMap((p) => [...p.changes[t.name].created, ...p.changes[t.name].updated])
        .map((r: Record<string, unknown>) => pick(r, ['id', ...serverColumns(t.name)]))
        .sort((a, b) => String(a['id']).localeCompare(String(b['id'])));
    }
    return out;
  }
  const stored = (table: string, user: string) => storedRows(ctx.database.db, table, user);
  const syncErrors = () => logged.error.filter((e) => e.includes('[Sync]'));

  it('two WatermelonDB devices and one mobile client exchange creates, updates and deletes and end with the server\'s rows', async () => {
    const user = 'wm-user';
    const w1 = await WatermelonDevice.open(server, user);
    const w2 = await WatermelonDevice.open(server, user);
    const m = await mobile(user);

    // W1 (offline, before its first sync) writes into every table.
    await w1.create('captures', { id: 'c1', type: 'text', raw_content: 'pick up parcel', state: 'captured', tags: '["errand","post"]' });
    await w1.create('captures', { id: 'c2', type: 'audio', raw_content: 'file:///memo.m4a', state: 'captured', tags: '[]', duration_ms: 4200 });
    await w1.create('todos', { id: 't1', description: 'parcel', state: 'todo', priority: 'high', deadline: 1_800_000_000_000 });
    await w1.create('thoughts', { id: 'th1', capture_id: 'c1', summary: 'post office' });
    await w1.create('ideas', { id: 'i1', thought_id: 'th1', text: 'a parcel locker' });
    await w1.create('projects', { id: 'p1', name: 'home', archived: true, color: '#00ff00' });
    await w1.sync();
    expect(await w1.hasUnsyncedChanges()).to.equal(false);
    const c1 = (await stored('captures', user)).find((r: any) => r.id === 'c1');
    expect(c1).to.include({ tags: '["errand","post"]', _status: 'active' }); // raw_content is stored encrypted
    expect(Number(c1.created_at)).to.equal((await w1.raw('captures', 'c1'))!['created_at']); // filled by WatermelonDB on create

    // The mobile client writes too, and gets W1's rows.
    await m.client.local.create('captures', { id: 'm1', type: 'text', raw_content: 'from the phone app', tags: '["phone"]' });
    await m.client.local.create('todos', { id: 'mt1', description: 'call the bank', priority: 'low' });
    await syncMobile(m);
    expect((await deviceRows(m, 'projects'))[0]).to.include({ id: 'p1', archived: true });

    // W2's first sync: everything, in pages of 3.
    await w2.sync();
    expect((await w2.rows('captures')).map((r) => r['id'])).to.deep.equal(['c1', 'c2', 'm1']);
    expect((await w2.rows('projects'))[0]).to.include({ archived: true });

    // Edits everywhere, before anyone syncs again.
    await w2.update('todos', 't1', { state: 'done', completed_at: 1_790_000_000_000 });
    await w2.delete('captures', 'c2');
    await w2.create('todos', { id: 't2', description: 'renew passport', state: 'todo', priority: 'medium' });
    await w2.update('captures', 'm1', { tags: '["phone","edited-on-w2"]' });
    await w1.update('ideas', 'i1', { text: 'a parcel locker nearby' });
    await w1.update('captures', 'c2', { raw_content: 'file:///memo-v2.m4a' }); // W2 deletes it: the delete wins
    await m.client.local.update('todos', 'mt1', { state: 'abandoned' });
    await m.client.local.delete('ideas', 'i1');
    await w2.sync();
    await w1.sync();
    await syncMobile(m);
    await m.client.local.update('todos', 't2', { deadline: 1_850_000_000_000 });
    await syncMobile(m);

    // A few rounds until everyone has everything (a device gets others' writes on its next pull).
    for (let round = 0; round < 2; round++) {
      await w1.sync();
      await w2.sync();
      await syncMobile(m);
    }

    const expected = await serverView(user);
    expect(expected['captures']!.map((r) => r['id'])).to.deep.equal(['c1', 'm1']);
    expect(expected['todos']!.map((r) => r['id'])).to.deep.equal(['mt1', 't1', 't2']);
    expect(expected['ideas']).to.deep.equal([]);
    expect(expected['todos']!.find((r) => r['id'] === 't1')).to.include({ state: 'done', completed_at: 1_790_000_000_000, priority: 'high' });
    expect(expected['todos']!.find((r) => r['id'] === 't2')).to.include({ deadline: 1_850_000_000_000 });
    expect(expected['todos']!.find((r) => r['id'] === 'mt1')).to.include({ state: 'abandoned' });
    expect(expected['captures']!.find((r) => r['id'] === 'm1')).to.include({ tags: '["phone","edited-on-w2"]' });
    for (const t of TABLES) {
      expect(await w1.rows(t.name), `W1 ${t.name}`).to.deep.equal(expected[t.name]);
      expect(await w2.rows(t.name), `W2 ${t.name}`).to.deep.equal(expected[t.name]);
      const mobileRows = (await deviceRows(m, t.name)).map((r) => pick(r, ['id', ...serverColumns(t.name)]));
      expect(mobileRows, `mobile ${t.name}`).to.deep.equal(expected[t.name]);
    }
    // Deletes are tombstones on the server.
    expect((await stored('captures', user)).filter((r: any) => r._status === 'deleted').map((r: any) => r.id)).to.deep.equal(['c2']);
    expect((await stored('ideas', user)).map((r: any) => [r.id, r._status])).to.deep.equal([['i1', 'deleted']]);
    for (const w of [w1, w2]) expect(await w.hasUnsyncedChanges()).to.equal(false);
    expect(m.client.getStatus()).to.include({ pending: 0 });
    // WatermelonDB never had to repair the server's created/updated lists, except for rows it
    // created itself (the known issue tested by 'a pulled row this device created itself ...').
    expect(syncErrors().filter((e) => !/create record \S+, but it already exists locally/.test(e))).to.deep.equal([]);
  });

  it('an edit made on the server between a WatermelonDB pull and push is a conflict merged by _changed and the policy table', async () => {
    const user = 'wm-conflict';
    const w1 = await WatermelonDevice.open(server, user);
    let between: (() => Promise<void>) | null = null;
    const w2 = await WatermelonDevice.open(server, user, {
      glue: {
        fetch: async (input, init) => {
          const res = await fetch(input, init);
          if (String(input).includes('/api/sync/pull') && between) await between(); // after the pull, before the push
          return res;
        },
      },
    });
    await w1.create('todos', { id: 't', description: 'renew passport', state: 'todo', priority: 'medium' });
    await w1.sync();
    await w2.sync();

    // W2 changes priority (server-owned) and description. While it syncs, W1's sync lands between
    // W2's pull and push: state done, priority low.
    await w2.update('todos', 't', { priority: 'high', description: 'renew passport (expires in May)' });
    expect((await w2.raw('todos', 't'))!['_changed']).to.equal('priority,description');
    await w1.update('todos', 't', { state: 'done', priority: 'low' });
    between = async () => {
      between = null;
      await w1.sync();
    };
    await w2.sync();

    // The server kept its priority (server-owned), took W2's description, and left state alone
    // (not in W2's _changed, though W2's record carried its stale 'todo').
    const [row] = await stored('todos', user);
    expect(row).to.include({ state: 'done', priority: 'low', description: 'renew passport (expires in May)' });
    const conflicts = await ctx.database.db('sync_conflicts').where({ user_id: user });
    expect(conflicts.map((c: any) => [c.record_id, c.conflict_type])).to.deep.equal([['t', 'update_update']]);

    // The merged version has no author: both devices pull it, W2 too.
    await w1.sync();
    await w2.sync();
    for (const w of [w1, w2]) {
      expect(pick((await w.raw('todos', 't'))!, ['state', 'priority', 'description', '_status', '_changed'])).to.deep.equal({
        state: 'done',
        priority: 'low',
        description: 'renew passport (expires in May)',
        _status: 'synced',
        _changed: '',
      });
    }
    expect(syncErrors()).to.deep.equal([]);
  });

  it('a pulled row this device created itself comes as updated, not created, after another device changed it', async () => {
    const user = 'wm-own-created';
    const seen: Seen[] = [];
    const w = await WatermelonDevice.open(server, user, { glue: { fetch: recordingFetch(seen) } });
    const m = await mobile(user);
    await w.sync(); // first sync: lastPulledAt is now T
    await w.create('todos', { id: 't', description: 'water the plants', state: 'todo', priority: 'low' });
    await w.sync(); // pulls since T (nothing), pushes t: its first write is after T
    await syncMobile(m);
    await m.client.local.update('todos', 't', { state: 'done' });
    await syncMobile(m);
    seen.length = 0;
    await w.sync(); // pulls since T again (synchronize() keeps the pull's timestamp, not the push's)
    expect((await w.raw('todos', 't'))!).to.include({ state: 'done', _status: 'synced' });
    const answer = seen.find((s) => s.path === '/api/sync/pull')!.answer;
    // WatermelonDB has t: sent as created it logs "[Sync] Server wants client to create record
    // todos#t, but it already exists locally ... Will update existing record instead."
    expect({ created: answer.changes.todos.created.map((r: any) => r.id), updated: answer.changes.todos.updated.map((r: any) => r.id) }).to.deep.equal({ created: [], updated: ['t'] });
    expect(syncErrors()).to.deep.equal([]);
  });

  it('paged pulls: a first sync omits X-Device-Id on every page, later syncs send it, and pages merge into one change set', async () => {
    const user = 'wm-pages';
    const seen: Seen[] = [];
    const w = await WatermelonDevice.open(server, user, { glue: { fetch: recordingFetch(seen) } });
    const other = server.client(user, 'another-device');
    const created = Array.from({ length: 7 }, (_, i) => ({ id: `c${i}`, type: 'text', raw_content: `note ${i}` }));
    expect((await other.push({ last_pulled_at: null, push_id: 'seed', changes: { captures: { created } } })).status).to.equal(200);
    await w.create('ideas', { id: 'own', text: 'written before the first sync' });

    await w.sync();
    const firstPulls = seen.filter((s) => s.path === '/api/sync/pull');
    expect(firstPulls.length).to.be.greaterThan(2); // 7 rows, pages of 3
    expect(firstPulls.map((s) => s.deviceId)).to.deep.equal(firstPulls.map(() => null));
    expect(firstPulls.map((s) => s.query.get('schema_version'))).to.deep.equal(firstPulls.map(() => '1'));
    expect(firstPulls[0]!.query.get('last_pulled_at')).to.equal('null');
    const [push] = seen.filter((s) => s.path === '/api/sync/push');
    expect(push!.deviceId).to.be.a('string');
    expect(push!.body.changes).to.have.keys(['ideas']); // empty tables left out
    expect(push!.body.changes.ideas.created[0]).to.include({ id: 'own', _status: 'created', _changed: '' });
    expect((await w.rows('captures')).map((r) => r['id'])).to.deep.equal(created.map((c) => c.id));

    // Between pages of the next pull, another device edits a row the first page already sent:
    // the later page's version is the one applied.
    await other.push({ last_pulled_at: null, push_id: 'edit-1', changes: { captures: { updated: [{ id: 'c0', raw_content: 'note 0, v2' }, { id: 'c1', raw_content: 'note 1, v2' }, { id: 'c2', raw_content: 'note 2, v2' }, { id: 'c3', raw_content: 'note 3, v2' }] } } });
    let editedBetweenPages = false;
    const between: typeof fetch = async (input, init) => {
      const res = await recordingFetch(seen)(input, init);
      if (String(input).includes('/pull') && !editedBetweenPages) {
        editedBetweenPages = true;
        await other.push({ last_pulled_at: null, push_id: 'edit-2', changes: { captures: { updated: [{ id: 'c0', raw_content: 'note 0, v3' }] }, todos: { created: [{ id: 'late', description: 'came in between' }] } } });
      }
      return res;
    };
    await w.restart({ glue: { fetch: between } });
    seen.length = 0;
    await w.sync();
    const pulls = seen.filter((s) => s.path === '/api/sync/pull');
    expect(pulls.length).to.be.greaterThan(1);
    expect(pulls.map((s) => s.deviceId)).to.deep.equal(pulls.map(() => push!.deviceId));
    expect((await w.raw('captures', 'c0'))!['raw_content']).to.equal('note 0, v3');
    expect((await w.raw('captures', 'c3'))!['raw_content']).to.equal('note 3, v2');
    expect((await w.rows('todos')).map((r) => r['id'])).to.deep.equal(['late']);
    expect(await w.rows('captures')).to.deep.equal((await serverView(user))['captures']);
    expect(syncErrors()).to.deep.equal([]);
  });

  it('a push whose answer is lost is retried with the same push_id and writes nothing twice', async () => {
    const user = 'wm-retry';
    const seen: Seen[] = [];
    const w = await WatermelonDevice.open(server, user, { glue: { fetch: recordingFetch(seen, { push: 1 }) } });
    await w.create('todos', { id: 't', description: 'pay rent', state: 'todo', priority: 'high' });
    await w.sync();
    const pushes = seen.filter((s) => s.path === '/api/sync/push');
    expect(pushes).to.have.length(2);
    expect(pushes[1]!.body.push_id).to.equal(pushes[0]!.body.push_id);
    expect(await ctx.database.db('sync_push_receipts').where({ user_id: user })).to.have.length(1);
    expect(await stored('todos', user)).to.have.length(1);
    expect(await w.hasUnsyncedChanges()).to.equal(false);

    // Each synchronize() pushes under a fresh push_id.
    await w.update('todos', 't', { state: 'done' });
    await w.sync();
    const later = seen.filter((s) => s.path === '/api/sync/push');
    expect(later).to.have.length(3);
    expect(later[2]!.body.push_id).to.not.equal(pushes[0]!.body.push_id);
  });

  it('a large push goes in batches of at most the server\'s SYNC_MAX_PUSH_RECORDS, each under its own push_id', async () => {
    const small = await startTestServer(ctx.database.db, { SYNC_MAX_PUSH_RECORDS: '4' });
    try {
      const user = 'wm-batches';
      const seen: Seen[] = [];
      const w = await WatermelonDevice.open(small, user, { glue: { fetch: recordingFetch(seen), maxPushRecords: 4 } });
      await w.sync();
      for (let i = 0; i < 6; i++) await w.create('ideas', { id: `i${i}`, text: `idea ${i}` });
      for (let i = 0; i < 3; i++) await w.create('todos', { id: `t${i}`, description: `todo ${i}`, state: 'todo', priority: 'low' });
      await w.sync();
      await w.delete('ideas', 'i0');
      await w.update('todos', 't0', { state: 'done' });
      await w.sync();
      const pushes = seen.filter((s) => s.path === '/api/sync/push');
      const sizes = pushes.map((p) => Object.values(p.body.changes as Record<string, { created: unknown[]; updated: unknown[]; deleted: unknown[] }>).reduce((n, c) => n + c.created.length + c.updated.length + c.deleted.length, 0));
      expect(sizes).to.deep.equal([4, 4, 1, 2]);
      expect(new Set(pushes.map((p) => p.body.push_id)).size).to.equal(4);
      expect((await stored('ideas', user)).map((r: any) => [r.id, r._status])).to.deep.equal([
        ['i0', 'deleted'],
        ...[1, 2, 3, 4, 5].map((i) => [`i${i}`, 'active']),
      ]);
      expect((await stored('todos', user)).map((r: any) => [r.id, r.state])).to.deep.equal([
        ['t0', 'done'],
        ['t1', 'todo'],
        ['t2', 'todo'],
      ]);
      expect(await w.hasUnsyncedChanges()).to.equal(false);
    } finally {
      await small.close();
    }
  });

  it('a push the server refuses makes synchronize() throw, and the changes stay pending for the next sync', async () => {
    const user = 'wm-refused';
    const w = await WatermelonDevice.open(server, user);
    // `state` is a non-optional string: left unset WatermelonDB sends '', which the server refuses.
    await w.create('todos', { id: 't', description: 'no state set', priority: 'low' });
    let error: unknown;
    await w.sync().catch((e) => (error = e));
    expect(error).to.be.an('error');
    expect((error as { status?: number; code?: string }).status).to.equal(400);
    expect((error as { code?: string }).code).to.equal('VALIDATION_FAILED');
    expect(await w.hasUnsyncedChanges()).to.equal(true);
    expect(await stored('todos', user)).to.have.length(0);
    await w.update('todos', 't', { state: 'todo' });
    await w.sync();
    expect((await stored('todos', user)).map((r: any) => r.state)).to.deep.equal(['todo']);
  });

  it('a migration sync (migrationsEnabledAtVersion) brings a table added in a new schema version in full', async () => {
    const user = 'wm-migration';
    const m = await mobile(user);
    await m.client.local.create('projects', { id: 'p1', name: 'garden', archived: false });
    await m.client.local.create('captures', { id: 'c1', type: 'text', raw_content: 'seeds' });
    await syncMobile(m);

    // Version 1 of the app has no projects table: it syncs the rest and skips projects.
    const v1 = appSchema({ version: 1, tables: [capturesTable, todosTable, thoughtsTable, ideasTable] });
    const seen: Seen[] = [];
    const w = await WatermelonDevice.open(server, user, { schema: v1, migrations: schemaMigrations({ migrations: [] }), migrationsEnabledAtVersion: 1, glue: { fetch: recordingFetch(seen) } });
    await w.sync();
    await w.sync();
    expect((await w.rows('captures')).map((r) => r['id'])).to.deep.equal(['c1']);
    expect(logged.warn.some((l) => l.includes('projects'))).to.equal(true); // WatermelonDB skipped the unknown collection

    // Version 2 adds it: the next sync asks for it in full, and gets the row the old pulls skipped.
    const v2 = appSchema({ version: 2, tables: [capturesTable, todosTable, thoughtsTable, ideasTable, projectsTable] });
    const migrations = schemaMigrations({ migrations: [{ toVersion: 2, steps: [createTable({ name: 'projects', columns: Object.values(projectsTable.columns) })] }] });
    await w.restart({ schema: v2, migrations, migrationsEnabledAtVersion: 1, glue: { fetch: recordingFetch(seen) } });
    seen.length = 0;
    await w.sync();
    const [first] = seen.filter((s) => s.path === '/api/sync/pull');
    expect(JSON.parse(first!.query.get('migration')!)).to.deep.equal({ from: 1, tables: ['projects'], columns: [] });
    expect(first!.query.get('schema_version')).to.equal('2');
    expect(await w.rows('projects')).to.deep.equal((await serverView(user))['projects']);
    expect((await w.rows('projects'))[0]).to.include({ id: 'p1', name: 'garden', archived: false });
    await w.sync();
    expect(seen.filter((s) => s.path === '/api/sync/pull').slice(1).every((s) => !s.query.has('migration'))).to.equal(true);
    expect(syncErrors()).to.deep.equal([]);
  });
});
