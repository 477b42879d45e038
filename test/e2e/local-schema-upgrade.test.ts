import { expect } from 'chai';
import { defineLocalSchema, type LocalMigration, type LocalSchema } from '../../mobile/src/local-schema';
import { TABLES, type TableSpec } from '../../src/domain';
import { MemoryAsyncStorage } from '../fakes/memory-async-storage';
import { describeEachDatabase } from '../support/databases';
import { deviceRows, newDeviceFile, openDevice, useDevices, type Device } from '../support/device';
import { startTestServer, storedRows, type TestServer } from '../support/server';

/**
 * An app update that adds a column to the local schema (docs/mobile.md, "Upgrading the local
 * schema"), end to end against the real server: a device at version 1 stores projects without
 * `color` (a column the server has); version 2 adds it with a step. The product's own schema is
 * still at version 1: the two versions here are built for the test, with the mechanism that ships.
 */
describeEachDatabase('mobile client: a local schema upgrade', (ctx) => {
  // During the rollout the server accepts both versions (docs/schema.md, "Rolling it out").
  const { device, server: currentServer } = useDevices(ctx, { SCHEMA_VERSION_MAX: '2' });
  let server: TestServer;
  before(() => {
    server = currentServer();
  });

  const without = (table: string, column: string): TableSpec[] =>
    TABLES.map((t) => (t.name !== table ? t : { ...t, columns: Object.fromEntries(Object.entries(t.columns).filter(([c]) => c !== column)) }));
  const v1 = defineLocalSchema({ tables: without('projects', 'color') });
  const addColor: LocalMigration = { toVersion: 2, sql: ['ALTER TABLE "projects" ADD COLUMN "color" TEXT'], pullColumns: [{ table: 'projects', columns: ['color'] }] };
  const v2 = defineLocalSchema({ migrations: [addColor] });

  /** A device at `schema`, its requests through `fetch` (the real one unless given). */
  const open = (user: string, schema: LocalSchema, o: { file?: Device['file']; storage?: MemoryAsyncStorage; fetch?: typeof fetch } = {}) =>
    device(user, {
      ...(o.file ? { file: o.file } : {}),
      ...(o.storage ? { storage: o.storage } : {}),
      extra: { localSchema: schema, server: { baseUrl: server.url, getToken: () => server.token(user), ...(o.fetch ? { fetch: o.fetch } : {}) }, transport: undefined },
    });
  const syncOk = async (d: Device) => {
    const r = await d.client.sync();
    if (r.isErr()) throw new Error(`sync failed: ${JSON.stringify(r.error)}`);
  };
  const byId = (rows: Array<Record<string, unknown>>) => Object.fromEntries(rows.map((r) => [r['id'], r]));

  it('upgrades a v1 device with pending edits in place; its next sync pulls the new column with `migration` (sent again after a failed sync, then no more), and nothing is lost', async () => {
    const user = 'upgrade-1';
    const file = newDeviceFile(user);
    const storage = new MemoryAsyncStorage();

    // Version 1 syncs its projects; a device already at version 2 gives them colors.
    const a1 = await open(user, v1, { file, storage });
    for (const [id, name] of [['p1', 'home'], ['p2', 'work'], ['p5', 'to be deleted']] as const) await a1.client.local.create('projects', { id, name });
    await syncOk(a1);
    const b = await open(user, v2);
    await syncOk(b);
    await b.client.local.update('projects', 'p1', { color: 'red' });
    await b.client.local.update('projects', 'p2', { color: 'blue' });
    await b.client.local.create('projects', { id: 'p3', name: 'garden', color: 'green' });
    await b.client.local.delete('projects', 'p5');
    await syncOk(b);
    // Version 1 pulls those (without the color), then renames p2: the server keeps p2's color,
    // and p2's latest version is now this device's own (an echo its incremental pulls skip).
    await syncOk(a1);
    expect(await deviceRows(a1, 'projects')).to.deep.equal([
      { id: 'p1', name: 'home', archived: false, created_at: (await a1.client.local.get('projects', 'p1'))!['created_at'] },
      { id: 'p2', name: 'work', archived: false, created_at: (await a1.client.local.get('projects', 'p2'))!['created_at'] },
      { id: 'p3', name: 'garden', archived: false, created_at: (await a1.client.local.get('projects', 'p3'))!['created_at'] },
    ]);
    await a1.client.local.update('projects', 'p2', { name: 'office' });
    await syncOk(a1);
    expect(byId(await storedRows(ctx.database.db, 'projects', user))['p2']).to.include({ name: 'office', color: 'blue' });
    // Offline edits waiting when the update is installed: a rename, a new project, an idea.
    await a1.client.local.update('projects', 'p1', { name: 'house' });
    await a1.client.local.create('projects', { id: 'p4', name: 'made offline' });
    await a1.client.local.create('ideas', { id: 'i1', text: 'kept through the upgrade' });
    expect(await a1.client.local.countPending()).to.equal(3);
    await a1.client.close();

    // The app update: the same file and storage, version 2. Its first sync's answer is lost.
    const pulls: URL[] = [];
    let loseNextMigrationAnswer = true;
    const fetchA: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      if (url.pathname === '/api/sync/pull') pulls.push(url);
      const res = await globalThis.fetch(input, init);
      if (url.searchParams.has('migration') && loseNextMigrationAnswer) {
        loseNextMigrationAnswer = false;
        await res.text();
        throw new TypeError('network connection lost');
      }
      return res;
    };
    const a2 = await open(user, v2, { file, storage, fetch: fetchA });
    expect(a2.client.getStatus().pending, 'pending edits kept by the upgrade').to.equal(3);
    const failed = await a2.client.sync();
    expect(failed.isErr() && failed.error.kind).to.equal('NETWORK_ERROR');
    await syncOk(a2);
    await syncOk(a2);

    const migrations = pulls.filter((u) => u.searchParams.has('migration'));
    expect(migrations, 'pulls with `migration`: the lost one, then its retry; none after the sync that succeeded').to.have.length(2);
    for (const u of migrations) {
      expect(JSON.parse(u.searchParams.get('migration')!)).to.deep.equal({ from: 1, tables: [], columns: [{ table: 'projects', columns: ['color'] }] });
      expect(u.searchParams.get('tables')).to.equal('projects');
      expect(Number(u.searchParams.get('last_pulled_at')), 'an incremental pull, not a first sync').to.be.above(0);
    }
    expect(pulls.every((u) => u.searchParams.get('schema_version') === '2')).to.equal(true);

    // The colors of rows synced before the upgrade arrived (p2's too), pending edits reached the
    // server and stayed on the device, and p5, deleted meanwhile, is gone: nothing lost.
    const rows = byId(await deviceRows(a2, 'projects'));
    expect(Object.keys(rows).sort()).to.deep.equal(['p1', 'p2', 'p3', 'p4']);
    expect(rows['p1']).to.include({ name: 'house', color: 'red' });
    expect(rows['p2']).to.include({ name: 'office', color: 'blue' });
    expect(rows['p3']).to.include({ name: 'garden', color: 'green' });
    expect(rows['p4']).to.include({ name: 'made offline', color: null });
    const stored = byId(await storedRows(ctx.database.db, 'projects', user));
    expect(stored['p1']).to.include({ name: 'house', color: 'red' });
    expect(stored['p4']).to.include({ name: 'made offline' });
    expect((await storedRows(ctx.database.db, 'ideas', user)).map((r: any) => r.text)).to.deep.equal(['kept through the upgrade']);
    expect(a2.client.getStatus()).to.include({ state: 'idle', pending: 0 });
    await syncOk(b);
    expect(byId(await deviceRows(b, 'projects'))['p1']).to.include({ name: 'house', color: 'red' });
  });

  it('a server that does not accept version 2 yet refuses the upgraded device with 426; its edits and the owed pull wait for one that does', async () => {
    const user = 'upgrade-early';
    const file = newDeviceFile(user);
    const storage = new MemoryAsyncStorage();
    const b = await open(user, v2);
    await b.client.local.create('projects', { id: 'p1', name: 'home', color: 'red' });
    await syncOk(b);
    const a1 = await open(user, v1, { file, storage });
    await syncOk(a1);
    await a1.client.local.update('projects', 'p1', { name: 'house' });
    await a1.client.close();

    // An app released before its server: the server still accepts version 1 only (the default).
    const early = await startTestServer(ctx.database.db);
    try {
      const a2 = await openDevice(early, user, { file, storage, extra: { localSchema: v2, server: { baseUrl: early.url, getToken: () => early.token(user) }, transport: undefined } });
      try {
        const refused = await a2.client.sync();
        expect(refused.isErr() && refused.error).to.include({ kind: 'SCHEMA_MISMATCH', code: 'SCHEMA_VERSION_UNSUPPORTED' });
        expect(await a2.client.local.countPending()).to.equal(1);
        expect(await a2.client.local.pendingPull('projects')).to.deep.equal({ table: 'projects', from: 1, columns: ['color'] });
      } finally {
        await a2.client.close();
      }
    } finally {
      await early.close();
    }

    const a3 = await open(user, v2, { file, storage });
    await syncOk(a3);
    expect(await a3.client.local.pendingPull('projects')).to.equal(null);
    expect(await a3.client.local.get('projects', 'p1')).to.include({ name: 'house', color: 'red' });
    expect(byId(await storedRows(ctx.database.db, 'projects', user))['p1']).to.include({ name: 'house', color: 'red' });
  });
});
