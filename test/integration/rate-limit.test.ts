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
