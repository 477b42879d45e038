import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';
import { WatermelonDevice, watermelonLogger } from '../support/watermelondb-app';
import { deviceIdOf, syncWithServer, SyncHttpError, SyncSetupError } from '../support/watermelondb-glue';

/**
 * The glue of docs/watermelondb.md where React Native runs it: on Hermes, which has no `crypto`
 * global (the global is removed here while the glue runs), and against a server that never
 * answers (a request must end, or WatermelonDB's sync lock is held for good).
 */

/** Runs `fn` with no `crypto` global, as on Hermes (Node's own `node:crypto` stays, for the server). */
async function withoutCryptoGlobal<T>(fn: () => Promise<T>): Promise<T> {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  if (!descriptor?.configurable) throw new Error('cannot remove the crypto global on this Node');
  delete (globalThis as { crypto?: unknown }).crypto;
  try {
    expect('crypto' in globalThis).to.equal(false);
    return await fn();
  } finally {
    Object.defineProperty(globalThis, 'crypto', descriptor);
  }
}

/** What a call threw (failing the test when it did not throw). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/**
 * An HTTP server on 127.0.0.1 that answers nothing on the paths `hang` accepts (and forwards the
 * rest to `target`); it notes each request held and resolves `closed` when its connection is gone.
 */
async function hangingServer(target: TestServer, hang: (req: IncomingMessage) => boolean) {
  const held: Array<{ path: string; closed: Promise<void> }> = [];
  const server: Server = createServer((req, res: ServerResponse) => {
    if (hang(req)) {
      held.push({ path: req.url ?? '', closed: new Promise<void>((resolve) => res.once('close', () => resolve())) });
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k, v]) => typeof v === 'string' && k !== 'host' && k !== 'content-length')) as Record<string, string>;
      const answer = await fetch(`${target.url}${req.url}`, { method: req.method!, headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
      res.end(Buffer.from(await answer.arrayBuffer()));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    held,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describeEachDatabase('WatermelonDB glue on Hermes: no crypto global, and requests that never end', (ctx) => {
  let server: TestServer;
  const logger = { ...watermelonLogger };
  before(async () => {
    // WatermelonDB's set-up chatter and its reports of the failures these tests cause on purpose.
    Object.assign(watermelonLogger, { log: () => undefined, warn: () => undefined, error: () => undefined });
    server = await startTestServer(ctx.database.db);
  });
  after(async () => {
    Object.assign(watermelonLogger, logger);
    await server.close();
  });
  const stored = (table: string, user: string) => ctx.database.db(table).where({ user_id: user }).orderBy('id');

  it('syncs with no crypto global when the app injects its id function, and keeps the device id it made', async () => {
    const user = 'wm-hermes';
    const made: string[] = [];
    const newId = () => {
      const id = `inj-${randomUUID()}`;
      made.push(id);
      return id;
    };
    const pushes: Array<{ deviceId: string | null; pushId: string }> = [];
    const recording: typeof fetch = async (input, init) => {
      if (String(input).includes('/api/sync/push')) pushes.push({ deviceId: new Headers(init?.headers).get('x-device-id'), pushId: JSON.parse(String(init?.body)).push_id });
      return fetch(input, init);
    };
    const w1 = await WatermelonDevice.open(server, user, { glue: { newPushId: newId, fetch: recording } });
    const w2 = await WatermelonDevice.open(server, user, { glue: { newPushId: newId } });
    await w1.create('captures', { id: 'h1', type: 'text', raw_content: 'written on Hermes', state: 'captured', tags: '[]' });
    await withoutCryptoGlobal(async () => {
      await w1.sync();
      await w1.update('captures', 'h1', { tags: '["edited"]' });
      await w1.sync();
      await w2.sync();
    });
    expect((await stored('captures', user)).map((r: any) => [r.id, r.tags])).to.deep.equal([['h1', '["edited"]']]);
    expect((await w2.rows('captures')).map((r) => r['id'])).to.deep.equal(['h1']);
    // The device id was made once with the injected function and kept in the database's LocalStorage.
    const deviceId = await deviceIdOf(w1.database, () => 'not used: the id is kept');
    expect(made).to.include(deviceId);
    expect(pushes.map((p) => p.deviceId)).to.deep.equal([deviceId, deviceId]);
    expect(pushes.every((p) => made.includes(p.pushId))).to.equal(true);
    expect(await w1.hasUnsyncedChanges()).to.equal(false);
  });

  it('with no crypto global and no id function, fails at once with a SyncSetupError that is not retryable, sending nothing', async () => {
    const user = 'wm-hermes-no-ids';
    let requests = 0;
    const counting: typeof fetch = (input, init) => {
      requests++;
      return fetch(input, init);
    };
    // Bad inputs tried: no id function and no device id kept; a device id given but no id function for pushes.
    const w = await WatermelonDevice.open(server, user, { glue: { fetch: counting } });
    await w.create('ideas', { id: 'i1', text: 'stays pending' });
    const [noIds, noPushIds] = await withoutCryptoGlobal(async () => [await rejection(w.sync()), await rejection(syncWithServer(w.database, { baseUrl: server.url, getToken: () => server.token(user), deviceId: 'kept-by-the-app', fetch: counting }))]);
    for (const e of [noIds, noPushIds]) {
      expect(e).to.be.instanceOf(SyncSetupError);
      expect(e).to.include({ retryable: false, name: 'SyncSetupError' });
      expect((e as Error).message).to.match(/no crypto\.randomUUID .*Pass newPushId/);
    }
    expect(requests).to.equal(0);
    expect(await stored('ideas', user)).to.deep.equal([]);
    expect(await w.hasUnsyncedChanges()).to.equal(true);
    // Nothing was half-done: the same device syncs once ids are given.
    await withoutCryptoGlobal(() => syncWithServer(w.database, { baseUrl: server.url, getToken: () => server.token(user), newPushId: randomUUID }));
    expect((await stored('ideas', user)).map((r: any) => r.id)).to.deep.equal(['i1']);
  });

  for (const hung of ['pull', 'push'] as const) {
    it(`a ${hung} to a server that never answers fails with a retryable TIMEOUT after timeoutMs, and the next synchronize() succeeds`, async function () {
      this.timeout(20_000);
      const user = `wm-hung-${hung}`;
      const hanging = await hangingServer(server, (req) => req.url!.startsWith(`/api/sync/${hung}`));
      try {
        const w = await WatermelonDevice.open(server, user);
        await w.create('captures', { id: 'c1', type: 'text', raw_content: 'waiting for a server', state: 'captured', tags: '[]' });
        const options = { getToken: () => server.token(user), newPushId: randomUUID, timeoutMs: 400, pushRetryDelaysMs: [] };
        const startedAt = Date.now();
        const e = await rejection(syncWithServer(w.database, { ...options, baseUrl: hanging.url }));
        const took = Date.now() - startedAt;
        expect(e).to.be.instanceOf(SyncHttpError);
        expect(e).to.include({ status: null, code: 'TIMEOUT', retryable: true });
        expect((e as Error).message).to.equal(`/api/sync/${hung}: no answer within 400 ms`);
        expect(took).to.be.at.least(400);
        // The glue gave up on the request: its connection was closed, not left open.
        expect(hanging.held.map((h) => h.path.split('?')[0])).to.deep.equal([`/api/sync/${hung}`]);
        await hanging.held[0]!.closed;
        // WatermelonDB's lock was released: the next call runs (no "Concurrent synchronization").
        await syncWithServer(w.database, { ...options, baseUrl: server.url });
        expect((await stored('captures', user)).map((r: any) => r.id)).to.deep.equal(['c1']);
        expect(await w.hasUnsyncedChanges()).to.equal(false);
      } finally {
        await hanging.close();
      }
    });
  }
});
