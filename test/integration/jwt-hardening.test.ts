import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, TEST_SECRET, type TestServer } from '../support/server';

/** JWT hardening beyond the basics (auth.test.ts): our own algorithm pinning, key ids and clock leeway. */
describeEachDatabase('JWT hardening', (ctx) => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  const pull = (s: TestServer, token: string) => fetch(`${s.url}/api/sync/pull?last_pulled_at=0`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
  const now = () => Math.floor(Date.now() / 1000);

  // jsonwebtoken, given no list, accepts HS256/384/512 for a secret and RS*/PS* for an RSA key:
  // these tokens are signed with the right key, so only the list our config passes refuses them.
  it('accepts only the algorithms our config pins: RS256 by default for an RSA key (not RS512 or PS256), and what JWT_ALGORITHMS names', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const signed = (algorithm: jwt.Algorithm) => jwt.sign({ sub: 'alg-user', exp: now() + 60 }, privateKey, { algorithm });
    server = await startTestServer(ctx.database.db, { JWT_SECRET: '', JWT_PUBLIC_KEY: pem });
    expect(server.config.jwt.algorithms).to.deep.equal(['RS256']);
    expect(await pull(server, signed('RS256')), 'RS256, the default').to.equal(200);
    expect(await pull(server, signed('RS512')), 'RS512, not pinned').to.equal(401);
    expect(await pull(server, signed('PS256')), 'PS256, not pinned').to.equal(401);
    await server.close();
    server = await startTestServer(ctx.database.db, { JWT_SECRET: '', JWT_PUBLIC_KEY: pem, JWT_ALGORITHMS: 'RS512' });
    expect(await pull(server, signed('RS512')), 'RS512, pinned').to.equal(200);
    expect(await pull(server, signed('RS256')), 'RS256, no longer pinned').to.equal(401);
    await server.close();
    server = await startTestServer(ctx.database.db, { JWT_ALGORITHMS: 'HS512' });
    const hmac = (algorithm: jwt.Algorithm) => jwt.sign({ sub: 'alg-user', exp: now() + 60 }, TEST_SECRET, { algorithm });
    expect(await pull(server, hmac('HS512')), 'HS512, pinned').to.equal(200);
    expect(await pull(server, hmac('HS256')), 'HS256, not pinned').to.equal(401);
    expect(await pull(server, hmac('HS384')), 'HS384, not pinned').to.equal(401);
  });

  it('with JWT_KEY_ID set, refuses a token naming another key or none, and accepts the right one', async () => {
    server = await startTestServer(ctx.database.db, { JWT_KEY_ID: 'k2026' });
    const sign = (header: object) => jwt.sign({ sub: 'kid-user', exp: now() + 60 }, TEST_SECRET, { algorithm: 'HS256', ...header });
    expect(await pull(server, sign({ keyid: 'k2026' }))).to.equal(200);
    expect(await pull(server, sign({ keyid: 'k2025' }))).to.equal(401);
    expect(await pull(server, sign({}))).to.equal(401);
    expect(await pull(server, server.token('kid-user')), 'npm run token signs with the configured kid').to.equal(200);
  });

  it('allows a small clock leeway (JWT_CLOCK_TOLERANCE_SECONDS, 5 s by default) and no more', async () => {
    const expiredBy = (s: number) => jwt.sign({ sub: 'clock', exp: now() - s }, TEST_SECRET, { algorithm: 'HS256' });
    const notYet = (s: number) => jwt.sign({ sub: 'clock', exp: now() + 600, nbf: now() + s }, TEST_SECRET, { algorithm: 'HS256' });
    server = await startTestServer(ctx.database.db);
    expect(await pull(server, expiredBy(2)), 'expired 2 s ago, within 5 s').to.equal(200);
    expect(await pull(server, expiredBy(30)), 'expired 30 s ago').to.equal(401);
    expect(await pull(server, notYet(2)), 'valid in 2 s').to.equal(200);
    expect(await pull(server, notYet(60)), 'valid in a minute').to.equal(401);
    await server.close();
    server = await startTestServer(ctx.database.db, { JWT_CLOCK_TOLERANCE_SECONDS: '0' });
    expect(await pull(server, expiredBy(2)), 'no leeway').to.equal(401);
  });

  // Issue 20, item 7: an identity provider that signs for several apps with one key.
  it("refuses another app's token (other aud or iss) when JWT_ISSUER and JWT_AUDIENCE are set", async () => {
    server = await startTestServer(ctx.database.db, { JWT_ISSUER: 'https://id.example', JWT_AUDIENCE: 'note-sync' });
    const sign = (claims: object) => jwt.sign({ sub: 'app-user', exp: now() + 60, ...claims }, TEST_SECRET, { algorithm: 'HS256' });
    expect(await pull(server, sign({ iss: 'https://id.example', aud: 'note-sync' }))).to.equal(200);
    expect(await pull(server, sign({ iss: 'https://id.example', aud: 'other-app' })), 'another audience').to.equal(401);
    expect(await pull(server, sign({ iss: 'https://evil.example', aud: 'note-sync' })), 'another issuer').to.equal(401);
    expect(await pull(server, sign({})), 'neither').to.equal(401);
  });

  describe('a configurable admin claim (JWT_ADMIN_CLAIM, JWT_ADMIN_VALUE)', () => {
    const stats = (s: TestServer, claims: object) =>
      fetch(`${s.url}/api/admin/sync/stats`, { headers: { authorization: `Bearer ${jwt.sign({ sub: 'ops', exp: now() + 60, ...claims }, TEST_SECRET, { algorithm: 'HS256' })}` } }).then((r) => r.status);

    it('by default `role: admin` is admin and nothing else is', async () => {
      server = await startTestServer(ctx.database.db);
      expect(await stats(server, { role: 'admin' })).to.equal(200);
      expect(await stats(server, { role: 'user' })).to.equal(403);
      expect(await stats(server, { roles: ['admin'] })).to.equal(403);
      expect(await stats(server, { role: ['admin'] }), 'an array under the default claim also holds the value').to.equal(200);
    });

    it('a claim holding an array (roles) names admins; the default claim no longer does', async () => {
      server = await startTestServer(ctx.database.db, { JWT_ADMIN_CLAIM: 'roles', JWT_ADMIN_VALUE: 'sync-admin' });
      expect(await stats(server, { roles: ['reader', 'sync-admin'] })).to.equal(200);
      expect(await stats(server, { roles: 'sync-admin' }), 'a single string also works').to.equal(200);
      expect(await stats(server, { roles: ['reader'] })).to.equal(403);
      expect(await stats(server, { role: 'admin' }), 'a plain user with the default claim name').to.equal(403);
      expect(await stats(server, { roles: ['admin'] }), 'the default value under the custom claim').to.equal(403);
      expect(await stats(server, { roles: [{ 'sync-admin': true }] }), 'an object is not the value').to.equal(403);
      expect(await pull(server, server.token('ops', { admin: true })), 'npm run token --admin signs the configured claim').to.equal(200);
      expect(await stats(server, { roles: ['sync-admin'], role: 'user' })).to.equal(200);
    });

    it('a nested claim (dotted path, e.g. realm_access.roles) works', async () => {
      server = await startTestServer(ctx.database.db, { JWT_ADMIN_CLAIM: 'realm_access.roles', JWT_ADMIN_VALUE: 'admin' });
      expect(await stats(server, { realm_access: { roles: ['admin'] } })).to.equal(200);
      expect(await stats(server, { realm_access: { roles: ['user'] } })).to.equal(403);
      expect(await stats(server, { role: 'admin' })).to.equal(403);
    });

    it('the admin token npm run token signs is admin under a custom claim', async () => {
      server = await startTestServer(ctx.database.db, { JWT_ADMIN_CLAIM: 'groups', JWT_ADMIN_VALUE: 'ops' });
      const status = await fetch(`${server.url}/api/admin/sync/stats`, { headers: { authorization: `Bearer ${server.token('ops', { admin: true })}` } }).then((r) => r.status);
      expect(status).to.equal(200);
    });
  });
});
