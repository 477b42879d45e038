import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';

/** Abuse limits: per user on the API, and per IP before authentication; 429 with Retry-After. */
describeEachDatabase('rate limits', (ctx) => {
  let server: TestServer;
  afterEach(() => server?.close());

  it('answers 429 RATE_LIMITED with Retry-After once a user is over the limit, and other users go on', async () => {
    server = await startTestServer(ctx.database.db, { RATE_LIMIT_USER_PER_MINUTE: '3' });
    const greedy = server.client('greedy');
    for (let i = 0; i < 3; i++) expect((await greedy.pull({ last_pulled_at: 0 })).status).to.equal(200);
    const refused = await greedy.push({ changes: { ideas: { created: [{ id: 'i1', text: 'over the limit' }] } } });
    expect(refused.status).to.equal(429);
    expect(refused.body.error).to.include({ code: 'RATE_LIMITED' });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).to.be.within(1, 60);
    expect(refused.body.error.details).to.deep.equal({ retry_after_seconds: retryAfter });
    expect(await ctx.database.db('ideas').where({ user_id: 'greedy' })).to.deep.equal([]);
    expect((await server.client('patient').pull({ last_pulled_at: 0 })).status).to.equal(200);
  });

  it('limits by IP before the token is checked, so a flood of bad tokens is cut short', async () => {
    server = await startTestServer(ctx.database.db, { RATE_LIMIT_IP_PER_MINUTE: '2' });
    const bad = { authorization: 'Bearer not-a-token' };
    expect((await fetch(`${server.url}/api/sync/pull`, { headers: bad })).status).to.equal(401);
    expect((await fetch(`${server.url}/api/sync/pull`, { headers: bad })).status).to.equal(401);
    const third = await fetch(`${server.url}/api/sync/pull`, { headers: { authorization: `Bearer ${server.token('someone')}` } });
    expect(third.status).to.equal(429);
    expect(((await third.json()) as any).error.code).to.equal('RATE_LIMITED');
    expect((await fetch(`${server.url}/healthz`)).status).to.equal(200);
  });
});

/**
 * Issue 20, item 3: behind a proxy that appends the client's address to X-Forwarded-For, a client
 * that writes a random first entry each request must not get a fresh per-IP bucket each time.
 * Only the entries the configured proxies appended (TRUST_PROXY_HOPS, 1 by default) are trusted.
 */
describeEachDatabase('rate limits behind a proxy (TRUST_PROXY)', (ctx) => {
  let server: TestServer;
  afterEach(() => server?.close());
  const forged = () => `${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}.0.${Math.floor(Math.random() * 256)}`;
  const pullFrom = (xff: string) => fetch(`${server.url}/api/sync/pull`, { headers: { authorization: `Bearer ${server.token('someone')}`, 'x-forwarded-for': xff } });

  it('one proxy hop (the default): a random first entry per request still counts against the address the proxy appended', async () => {
    server = await startTestServer(ctx.database.db, { TRUST_PROXY: 'true', RATE_LIMIT_IP_PER_MINUTE: '2' });
    expect((await pullFrom(`${forged()}, 203.0.113.7`)).status).to.equal(200);
    expect((await pullFrom(`${forged()}, 203.0.113.7`)).status).to.equal(200);
    const third = await pullFrom(`${forged()}, 203.0.113.7`);
    expect(third.status).to.equal(429);
    // Another client behind the same proxy has its own bucket.
    expect((await pullFrom(`${forged()}, 203.0.113.8`)).status).to.equal(200);
  });

  it('TRUST_PROXY_HOPS=2: the client is the second entry from the right, whatever the client wrote before it', async () => {
    server = await startTestServer(ctx.database.db, { TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '2', RATE_LIMIT_IP_PER_MINUTE: '2' });
    for (let i = 0; i < 2; i++) expect((await pullFrom(`${forged()}, 198.51.100.4, 10.0.0.${i + 1}`)).status).to.equal(200);
    expect((await pullFrom(`${forged()}, 198.51.100.4, 10.0.0.9`)).status).to.equal(429);
    expect((await pullFrom(`${forged()}, 198.51.100.5, 10.0.0.1`)).status).to.equal(200);
  });
});
