import { expect } from 'chai';
import sinon from 'sinon';
import type { ConflictEvent } from '../../mobile/src/local-database';
import { describeEachDatabase } from '../support/databases';
import { deviceRows, useDevices } from '../support/device';
import type { TestServer } from '../support/server';

/**
 * The client on a phone's network: compressed bodies both ways, conflicts reported to the app,
 * and an injected fetch (a certificate-pinning one, in an app) carrying every request.
 */
describeEachDatabase('mobile client on a real phone network', (ctx) => {
  const { device, server: currentServer } = useDevices(ctx);
  let server: TestServer;
  before(() => {
    server = currentServer();
  });
  afterEach(() => sinon.restore());

  /** A device whose requests all go through `seen`, recording what crossed the wire. */
  async function deviceWithFetch(user: string, seen: Array<{ method: string; sent?: string | null; received?: string | null }>, extra = {}) {
    const realFetch = globalThis.fetch;
    const injected: typeof fetch = async (input, init) => {
      const entry: (typeof seen)[number] = { method: init?.method ?? 'GET', sent: new Headers(init?.headers).get('content-encoding') };
      seen.push(entry);
      const res = await realFetch(input, init);
      entry.received = res.headers.get('content-encoding');
      return res;
    };
    return device(user, { extra: { server: { baseUrl: server.url, getToken: () => server.token(user), schemaVersion: 1, fetch: injected }, transport: undefined, ...extra } });
  }

  it('sends large pushes gzip-compressed and receives large pulls compressed, and the data arrives intact', async () => {
    const seen: Array<{ method: string; sent?: string | null; received?: string | null }> = [];
    const d1 = await deviceWithFetch('zip1', seen);
    for (let i = 0; i < 200; i++) await d1.client.local.create('ideas', { id: `z${i}`, text: `a long enough idea to be worth compressing, number ${i}` });
    expect((await d1.client.sync()).isOk()).to.equal(true);
    const pushes = seen.filter((s) => s.method === 'POST');
    expect(pushes.length).to.equal(2);
    expect(pushes.every((p) => p.sent === 'gzip')).to.equal(true);
    expect(await ctx.database.db('ideas').where({ user_id: 'zip1' }).pluck('id')).to.have.length(200);

    const seen2: typeof seen = [];
    const d2 = await deviceWithFetch('zip1', seen2);
    expect((await d2.client.sync()).isOk()).to.equal(true);
    const bigPull = seen2.find((s) => s.method === 'GET' && s.received !== null);
    expect(bigPull?.received).to.be.oneOf(['br', 'gzip']);
    expect(await deviceRows(d2, 'ideas')).to.deep.equal(await deviceRows(d1, 'ideas'));
  });

  it('sends every request through the injected fetch, never the global one', async () => {
    const seen: Array<{ method: string }> = [];
    const d = await deviceWithFetch('pin1', seen);
    const global = sinon.stub(globalThis, 'fetch').rejects(new Error('the unpinned global fetch was used'));
    await d.client.local.create('captures', { id: 'c1', type: 'text', raw_content: 'pinned' });
    const result = await d.client.sync();
    expect(result.isOk(), JSON.stringify(result)).to.equal(true);
    expect(global.called).to.equal(false);
    expect(seen.length).to.equal(5 + 1); // a pull per table, and one push
  });

  it('tells the app about a two-device edit of one todo: which columns each side won', async () => {
    const phone = await device('both');
    const laptop = await device('both');
    await phone.client.local.create('todos', { id: 't', description: 'plan trip', priority: 'low' });
    expect((await phone.client.sync()).isOk()).to.equal(true);
    expect((await laptop.client.sync()).isOk()).to.equal(true);

    const heard: ConflictEvent[] = [];
    laptop.client.onConflict((events) => heard.push(...events));
    await phone.client.local.update('todos', 't', { description: 'plan trip to Lisbon', priority: 'high' });
    expect((await phone.client.sync()).isOk()).to.equal(true);
    await laptop.client.local.update('todos', 't', { state: 'done', priority: 'medium' });
    const report = await laptop.client.sync();

    expect(heard).to.deep.equal([
      { table: 'todos', id: 't', type: 'update_update', resolution: 'per_column', clientColumns: ['state'], serverColumns: ['priority'], detectedBy: 'device' },
    ]);
    expect(report.isOk() && report.value.conflicts).to.deep.equal(heard);
    expect(report.isOk() && report.value.tables['todos']!.conflicts).to.equal(1);
    expect(laptop.client.getStatus().conflicts).to.equal(1);
    expect(await laptop.client.local.get('todos', 't')).to.include({ description: 'plan trip to Lisbon', priority: 'high', state: 'done' });
    expect((await phone.client.sync()).isOk()).to.equal(true);
    expect(await phone.client.local.get('todos', 't')).to.include({ description: 'plan trip to Lisbon', priority: 'high', state: 'done' });
  });

  it('reports a conflict the server resolved during a push, with its columns', async () => {
    let worker: (() => Promise<unknown>) | null = null;
    const phone = await device('srv', {
      // The transcription worker writes between the phone's pull and its push.
      wrap: (inner) => ({
        pull: (p) => inner.pull(p),
        push: async (b) => {
          if (worker) await worker();
          worker = null;
          return inner.push(b);
        },
      }),
    });
    await phone.client.local.create('captures', { id: 'c', type: 'audio', raw_content: 'memo.m4a' });
    expect((await phone.client.sync()).isOk()).to.equal(true);
    await phone.client.local.update('captures', 'c', { state: 'failed', tags: '["voice"]' });
    worker = () => ctx.database.db('captures').where({ user_id: 'srv', id: 'c' }).update({ state: 'ready', normalized_text: 'hello', encrypted: false });
    const heard: ConflictEvent[] = [];
    phone.client.onConflict((events) => heard.push(...events));
    expect((await phone.client.sync()).isOk()).to.equal(true);
    expect(heard).to.deep.equal([
      { table: 'captures', id: 'c', type: 'update_update', resolution: 'per_column', clientColumns: ['tags'], serverColumns: ['state'], detectedBy: 'server' },
    ]);
    // The merged row comes back on the next sync.
    expect((await phone.client.sync()).isOk()).to.equal(true);
    expect(await phone.client.local.get('captures', 'c')).to.include({ state: 'ready', normalized_text: 'hello', tags: '["voice"]' });
  });
});
