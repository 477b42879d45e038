import { expect } from 'chai';
import { FetchEventSource } from '../../mobile/src/adapters/fetch-event-source';
import type { SyncState, SyncStatus } from '../../mobile/src/sync-client';
import type { SyncFailure } from '../../src/domain';
import { signToken } from '../../src/adapters/crypto/jwt-token-issuer';
import { ManualTimers } from '../fakes/manual-timers';
import { describeEachDatabase } from '../support/databases';
import { useDevices, type Device } from '../support/device';
import { storedRows, type TestServer } from '../support/server';
import { until } from '../support/until';

/**
 * Token refresh (docs/mobile.md, "Token refresh") against the real server: tokens signed
 * with the server's key, the expired ones with an `exp` an hour in the past, so the server itself
 * answers 401 TOKEN_EXPIRED.
 */
describeEachDatabase('mobile client: expired tokens', (ctx) => {
  const { device, server: currentServer } = useDevices(ctx);
  let server: TestServer;
  before(() => {
    server = currentServer();
  });
  const expired = (user: string) => signToken(server.config.jwt, user, { expiresInSeconds: -3600 });

  /** The app's token source: expired until `good`; records each call's forceRefresh. */
  function tokens(user: string) {
    const t = {
      good: false,
      asked: [] as boolean[],
      refreshes: () => t.asked.filter(Boolean).length,
      getToken: (o?: { forceRefresh?: boolean }) => {
        t.asked.push(o?.forceRefresh === true);
        return t.good ? server.token(user) : expired(user);
      },
    };
    return t;
  }

  /** A fetch that records each request's path and the answer's status. */
  function counting() {
    const seen: Array<{ path: string; status: number }> = [];
    const fetch: typeof globalThis.fetch = async (input, init) => {
      const res = await globalThis.fetch(input, init);
      seen.push({ path: new URL(String(input)).pathname, status: res.status });
      return res;
    };
    return { seen, fetch };
  }

  function states(d: Device): SyncState[] {
    const out: SyncState[] = [];
    d.client.subscribe((s: SyncStatus) => {
      if (out[out.length - 1] !== s.state) out.push(s.state);
    });
    return out;
  }

  it('an expired token: the client asks for a fresh one once, sends the request again, and the sync succeeds', async () => {
    const user = 'refresh-once';
    const t = tokens(user);
    const net = counting();
    // The app's cached token is expired; its refresh gives a good one.
    const getToken = (o?: { forceRefresh?: boolean }) => {
      if (o?.forceRefresh) t.good = true;
      return t.getToken(o);
    };
    const d = await device(user, { extra: { server: { baseUrl: server.url, getToken, schemaVersion: 1, fetch: net.fetch }, transport: undefined } });
    await d.client.local.create('captures', { id: 'r1', type: 'text', raw_content: 'written with an old token' });
    const r = await d.client.sync();
    expect(r.isOk(), JSON.stringify(r.isErr() && r.error)).to.equal(true);
    expect(t.refreshes(), 'getToken({ forceRefresh: true }) calls').to.equal(1);
    expect(net.seen[0]).to.deep.equal({ path: '/api/sync/pull', status: 401 });
    expect(net.seen[1], 'the same request again').to.deep.equal({ path: '/api/sync/pull', status: 200 });
    expect(net.seen.slice(1).every((s) => s.status === 200)).to.equal(true);
    expect((await storedRows(ctx.database.db, 'captures', user)).map((row: any) => row.id)).to.deep.equal(['r1']);
    expect(d.client.getStatus()).to.include({ state: 'idle', pending: 0 });
  });

  it('a refreshed token refused again: unauthenticated, one event, no request from any trigger until the app syncs with a good token', async () => {
    const user = 'refresh-refused';
    const t = tokens(user);
    const net = counting();
    const timers = new ManualTimers();
    const d = await device(user, {
      timers,
      extra: { server: { baseUrl: server.url, getToken: t.getToken, schemaVersion: 1, fetch: net.fetch }, transport: undefined, debounceMs: 1000, pollIntervalMs: 60_000 },
    });
    const events: SyncFailure[] = [];
    d.client.onUnauthenticated((f) => events.push(f));
    await d.client.local.create('captures', { id: 'u1', type: 'text', raw_content: 'kept while signed out' });
    const seenStates = states(d);

    const r = await d.client.sync();
    expect(r.isErr()).to.equal(true);
    expect(net.seen).to.deep.equal([
      { path: '/api/sync/pull', status: 401 },
      { path: '/api/sync/pull', status: 401 },
    ]);
    expect(t.refreshes()).to.equal(1);
    expect(d.client.getStatus()).to.deep.include({ state: 'unauthenticated', pending: 1 });
    expect(d.client.getStatus().lastError).to.include({ kind: 'AUTH_ERROR', code: 'TOKEN_EXPIRED', retryable: false });
    expect(events).to.have.length(1);
    expect(events[0]).to.include({ code: 'TOKEN_EXPIRED' });

    // Every trigger the client has: started (its launch sync is the app's own call, refused
    // again), a local write (debounced), the network dropping and returning, the poll, retries.
    d.client.start();
    await until(() => net.seen.length === 4);
    await d.client.local.create('captures', { id: 'u2', type: 'text', raw_content: 'also kept' });
    d.network.setOnline(false);
    d.network.setOnline(true);
    const before = seenStates.length;
    for (let round = 0; round < 3; round++) timers.fire();
    // A sync publishes `syncing` as it starts, before its first await: none started.
    await new Promise((resolve) => setImmediate(resolve));
    expect(seenStates.slice(before), 'states published by the triggers').to.deep.equal([]);
    expect(net.seen, 'requests: the two syncs the app asked for, no more').to.have.length(4);
    expect(events, 'heard once, not once per refusal').to.have.length(1);
    expect(d.client.getStatus()).to.include({ state: 'unauthenticated', pending: 2 });

    // The user signs in again: the app's next sync goes through and the triggers work again.
    t.good = true;
    const again = await d.client.sync();
    expect(again.isOk(), JSON.stringify(again.isErr() && again.error)).to.equal(true);
    expect(d.client.getStatus()).to.include({ state: 'idle', pending: 0 });
    expect((await storedRows(ctx.database.db, 'captures', user)).map((row: any) => row.id).sort()).to.deep.equal(['u1', 'u2']);
    const requests = net.seen.length;
    await d.client.local.create('captures', { id: 'u3', type: 'text', raw_content: 'after signing in' });
    timers.fire(1000);
    await until(async () => (await storedRows(ctx.database.db, 'captures', user)).length === 3);
    expect(net.seen.length).to.be.above(requests);
    expect(events).to.have.length(1);
  });

  it('the live channel refused after a refresh: unauthenticated, no reconnect until the app syncs with a good token', async () => {
    const user = 'live-refused';
    const t = tokens(user);
    const net = counting();
    const timers = new ManualTimers();
    const d = await device(user, {
      timers,
      extra: {
        server: { baseUrl: server.url, getToken: t.getToken, schemaVersion: 1, fetch: net.fetch },
        transport: undefined,
        live: { eventSource: (url, o) => new FetchEventSource(url, o, net.fetch as never) },
      },
    });
    const events: SyncFailure[] = [];
    d.client.onUnauthenticated((f) => events.push(f));
    d.client.start();
    const live = () => net.seen.filter((s) => s.path === '/api/sync/live');
    await until(() => live().length === 2 && d.client.getStatus().state === 'unauthenticated' && net.seen.length === 4);
    expect(live().map((s) => s.status)).to.deep.equal([401, 401]);
    expect(events).to.have.length(1);
    for (let round = 0; round < 3; round++) timers.fire();
    await new Promise((resolve) => setImmediate(resolve));
    expect(net.seen, 'no reconnect, no sync').to.have.length(4);

    t.good = true;
    expect((await d.client.sync()).isOk()).to.equal(true);
    await until(() => d.client.getStatus().live);
    expect(live().map((s) => s.status)).to.deep.equal([401, 401, 200]);
  });
});
