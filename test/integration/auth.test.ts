import { expect } from 'chai';
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describeEachDatabase } from '../support/databases';
import { base64url, expectError, expectHealthy, send, snapshotDb } from '../support/http-helpers';
import { startTestServer, storedRows, TEST_SECRET, type TestServer } from '../support/server';

/**
 * Authentication over HTTP (spec §2): every /api route needs a bearer JWT that the server's
 * pinned algorithm verifies, with `exp`, a usable `sub`, and `iss`/`aud` when configured.
 * Every refused request gets 401 in the error shape with a code that says what to do
 * (TOKEN_MISSING, TOKEN_EXPIRED, TOKEN_INVALID) and an RFC 6750 challenge, and a refused push writes
 * nothing. Tokens are built by hand, so that the forged ones are exactly what an attacker sends.
 */

type Claims = Record<string, unknown>;

const nowSeconds = () => Math.floor(Date.now() / 1000);
const claims = (extra: Claims = {}): Claims => ({ sub: 'alice', iat: nowSeconds(), exp: nowSeconds() + 3600, ...extra });
const without = (key: string): Claims => Object.fromEntries(Object.entries(claims()).filter(([k]) => k !== key));

function hmacToken(payload: Claims | string, secret: string | Buffer = TEST_SECRET, alg: 'HS256' | 'HS512' = 'HS256', header: object = {}): string {
  const signingInput = `${base64url({ alg, typ: 'JWT', ...header })}.${base64url(payload)}`;
  const signature = createHmac(alg === 'HS256' ? 'sha256' : 'sha512', secret).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}

function asymmetricToken(alg: 'RS256' | 'ES256', privateKey: KeyObject, payload: Claims, header: object = {}): string {
  const signingInput = `${base64url({ alg, typ: 'JWT', ...header })}.${base64url(payload)}`;
  const signature = sign('sha256', Buffer.from(signingInput), alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey);
  return `${signingInput}.${signature.toString('base64url')}`;
}

/** `alg: none`: base64url header and payload, and an empty signature. */
function unsignedToken(payload: Claims, alg = 'none'): string {
  return `${base64url({ alg, typ: 'JWT' })}.${base64url(payload)}.`;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();

describeEachDatabase('authentication', (ctx) => {
  let hs: TestServer;
  let hsIssAud: TestServer;
  let rs: TestServer;
  let es: TestServer;
  before(async () => {
    hs = await startTestServer(ctx.database.db);
    hsIssAud = await startTestServer(ctx.database.db, { JWT_ISSUER: 'https://id.example.com', JWT_AUDIENCE: 'note-sync' });
    rs = await startTestServer(ctx.database.db, { JWT_SECRET: '', JWT_PUBLIC_KEY: pem(rsa.publicKey) });
    es = await startTestServer(ctx.database.db, { JWT_SECRET: '', JWT_PUBLIC_KEY: pem(ec.publicKey) });
  });
  after(async () => {
    await Promise.all([hs, hsIssAud, rs, es].filter(Boolean).map((s) => s.close()));
  });

  const pushBody = JSON.stringify({ changes: { ideas: { created: [{ id: 'i2', text: 'forged' }], updated: [{ id: 'i1', text: 'overwritten' }] } } });

  function pushAs(server: TestServer, authorization: string | undefined) {
    return send(`${server.url}/api/sync/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
      body: pushBody,
    });
  }

  function pullAs(server: TestServer, authorization: string | undefined) {
    return send(`${server.url}/api/sync/pull?last_pulled_at=0`, { headers: authorization === undefined ? {} : { authorization } });
  }

  type Refusal = 'TOKEN_MISSING' | 'TOKEN_EXPIRED' | 'TOKEN_INVALID';
  const CHALLENGE: Record<Refusal, string> = {
    TOKEN_MISSING: 'Bearer realm="note-sync"',
    TOKEN_EXPIRED: 'Bearer realm="note-sync", error="invalid_token", error_description="The access token expired"',
    TOKEN_INVALID: 'Bearer realm="note-sync", error="invalid_token", error_description="The access token is invalid"',
  };

  /** Alice has a row; the request tries to change it, add one, and read hers: 401 for both, nothing written. */
  async function expectRefused(server: TestServer, authorization: string | undefined, code: Refusal = 'TOKEN_INVALID'): Promise<void> {
    const seeded = await hs.client('alice').push({ changes: { ideas: { created: [{ id: 'i1', text: 'mine' }] } } });
    expect(seeded.status).to.equal(200);
    const before = await snapshotDb(ctx.database.db);

    const push = await pushAs(server, authorization);
    expectError(push, 401, code);
    const pull = await pullAs(server, authorization);
    expectError(pull, 401, code);
    expect(pull.text).not.to.include('mine');
    for (const answer of [push, pull]) {
      expect(answer.headers.get('www-authenticate')).to.equal(CHALLENGE[code]);
      // Nothing about the key: neither the secret nor the configured issuer or audience.
      expect(answer.text).not.to.include(TEST_SECRET).and.not.to.include('example.com').and.not.to.match(/expected|secret/i);
    }

    expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
    await expectHealthy(server.url);
  }

  /** The control: the same request with a good token is served and written. */
  async function expectAccepted(server: TestServer, authorization: string): Promise<void> {
    const push = await pushAs(server, authorization);
    expect(push.status, push.text).to.equal(200);
    const pull = await pullAs(server, authorization);
    expect(pull.status, pull.text).to.equal(200);
    expect(pull.body.changes.ideas.created.map((r: any) => r.id)).to.have.members(['i1', 'i2']);
    const rows = await storedRows(ctx.database.db, 'ideas', 'alice');
    expect(rows.map((r: any) => [r.id, r.text])).to.deep.equal([
      ['i1', 'overwritten'],
      ['i2', 'forged'],
    ]);
  }

  describe('HS256 server', () => {
    it('accepts a good HS256 token (the control for the refusals below)', async () => {
      await expectAccepted(hs, `Bearer ${hmacToken(claims())}`);
    });

    it('accepts the Bearer scheme in any letter case (RFC 7235)', async () => {
      const r = await pullAs(hs, `bearer ${hmacToken(claims())}`);
      expect(r.status, r.text).to.equal(200);
    });

    const missing: Array<[string, () => string | undefined]> = [
      ['no Authorization header', () => undefined],
      ['the Basic scheme', () => `Basic ${Buffer.from('alice:password').toString('base64')}`],
      ['a good token without the Bearer scheme', () => hmacToken(claims())],
      ['"Bearer" with no token', () => 'Bearer'],
      ['"Bearer " followed by spaces only', () => 'Bearer   '],
    ];
    for (const [what, header] of missing) {
      it(`refuses ${what} with 401 TOKEN_MISSING and writes nothing`, async () => {
        await expectRefused(hs, header(), 'TOKEN_MISSING');
      });
    }

    it('refuses an expired token with 401 TOKEN_EXPIRED (renew it) and writes nothing', async () => {
      await expectRefused(hs, `Bearer ${hmacToken(claims({ iat: nowSeconds() - 7200, exp: nowSeconds() - 60 }))}`, 'TOKEN_EXPIRED');
    });

    it('calls an expired token signed with another secret invalid, not expired: expiry is told only for genuine tokens', async () => {
      await expectRefused(hs, `Bearer ${hmacToken(claims({ exp: nowSeconds() - 60 }), 'another-secret-0123456789abcdef0123456789')}`, 'TOKEN_INVALID');
    });

    const refused: Array<[string, () => string | undefined]> = [
      ['a bearer value that is not a JWT', () => 'Bearer not-a-jwt'],
      ['two tokens in one header', () => `Bearer ${hmacToken(claims())} ${hmacToken(claims())}`],
      ['a token signed with another secret', () => `Bearer ${hmacToken(claims(), 'another-secret-0123456789abcdef0123456789')}`],
      [
        'a good token whose payload was swapped after signing',
        () => {
          const [h, , s] = hmacToken(claims({ sub: 'mallory' })).split('.');
          return `Bearer ${h}.${base64url(claims())}.${s}`;
        },
      ],
      ['alg "none" with an empty signature', () => `Bearer ${unsignedToken(claims())}`],
      ['alg "None" with an empty signature', () => `Bearer ${unsignedToken(claims(), 'None')}`],
      ['alg "NONE" with an empty signature', () => `Bearer ${unsignedToken(claims(), 'NONE')}`],
      [
        'alg "none" carrying a valid HS256 signature',
        () => {
          const [, p, s] = hmacToken(claims()).split('.');
          return `Bearer ${base64url({ alg: 'none', typ: 'JWT' })}.${p}.${s}`;
        },
      ],
      ['an HS512 token when only HS256 is pinned', () => `Bearer ${hmacToken(claims(), TEST_SECRET, 'HS512')}`],
      ['an RS256 token when HS256 is configured', () => `Bearer ${asymmetricToken('RS256', rsa.privateKey, claims())}`],
      ['a token without exp', () => `Bearer ${hmacToken(without('exp'))}`],
      ['a token whose exp is a string', () => `Bearer ${hmacToken(claims({ exp: String(nowSeconds() + 3600) }))}`],
      ['a token not valid before an hour from now (nbf)', () => `Bearer ${hmacToken(claims({ nbf: nowSeconds() + 3600 }))}`],
      ['a token without sub', () => `Bearer ${hmacToken(without('sub'))}`],
      ['a token with an empty sub', () => `Bearer ${hmacToken(claims({ sub: '' }))}`],
      ['a token whose sub is a number', () => `Bearer ${hmacToken(claims({ sub: 42 }))}`],
      ['a token whose sub is over 255 characters', () => `Bearer ${hmacToken(claims({ sub: 'a'.repeat(256) }))}`],
      ['a token whose sub contains a NUL character', () => `Bearer ${hmacToken(claims({ sub: 'ali\u0000ce' }))}`],
      // PostgreSQL would store it as U+FFFD: "ali\ud800ce" and "ali\ud801ce" would be one user.
      ['a token whose sub contains a lone UTF-16 surrogate', () => `Bearer ${hmacToken(claims({ sub: 'ali\ud800ce' }))}`],
      ['a token whose payload is a JSON string, not an object', () => `Bearer ${hmacToken('"alice"')}`],
    ];
    for (const [what, header] of refused) {
      it(`refuses ${what} with 401 TOKEN_INVALID and writes nothing`, async () => {
        await expectRefused(hs, header());
      });
    }
  });

  describe('HS256 server during a secret rotation (JWT_SECRET=new,old)', () => {
    const NEW = 'rotated-new-secret-0123456789abcdef01234';
    let rotating: TestServer;
    before(async () => {
      rotating = await startTestServer(ctx.database.db, { JWT_SECRET: `${NEW},${TEST_SECRET}` });
    });
    after(() => rotating?.close());

    it('accepts tokens signed with the new secret and with the old one', async () => {
      await expectAccepted(rotating, `Bearer ${hmacToken(claims(), NEW)}`);
      const old = await pullAs(rotating, `Bearer ${hmacToken(claims(), TEST_SECRET)}`);
      expect(old.status, old.text).to.equal(200);
    });

    it('signs with the first secret of the list (npm run token, the development token)', async () => {
      const signed = rotating.token('alice').split('.');
      expect(signed[2]).to.equal(createHmac('sha256', NEW).update(`${signed[0]}.${signed[1]}`).digest('base64url'));
    });

    it('still refuses a token signed with neither, and tells expired from invalid with either secret', async () => {
      await expectRefused(rotating, `Bearer ${hmacToken(claims(), 'a-third-secret-0123456789abcdef0123456789')}`, 'TOKEN_INVALID');
      await expectRefused(rotating, `Bearer ${hmacToken(claims({ exp: nowSeconds() - 60 }), TEST_SECRET)}`, 'TOKEN_EXPIRED');
    });
  });

  describe('HS256 server with JWT_ISSUER and JWT_AUDIENCE', () => {
    const good = { iss: 'https://id.example.com', aud: 'note-sync' };

    it('accepts a token with the configured iss and aud', async () => {
      await expectAccepted(hsIssAud, `Bearer ${hmacToken(claims(good))}`);
    });

    it('accepts a token whose aud list includes the configured audience', async () => {
      const r = await pullAs(hsIssAud, `Bearer ${hmacToken(claims({ ...good, aud: ['other-app', 'note-sync'] }))}`);
      expect(r.status, r.text).to.equal(200);
    });

    const refused: Array<[string, Claims]> = [
      ['a wrong aud', { ...good, aud: 'other-app' }],
      ['no aud', { iss: good.iss }],
      ['a wrong iss', { ...good, iss: 'https://evil.example.com' }],
      ['no iss', { aud: good.aud }],
    ];
    for (const [what, extra] of refused) {
      it(`refuses a token with ${what} with 401 and writes nothing`, async () => {
        await expectRefused(hsIssAud, `Bearer ${hmacToken(claims(extra))}`);
      });
    }
  });

  describe('RS256/ES256 server with an RSA JWT_PUBLIC_KEY', () => {
    it('accepts an RS256 token signed with the matching private key', async () => {
      await expectAccepted(rs, `Bearer ${asymmetricToken('RS256', rsa.privateKey, claims())}`);
    });

    const refused: Array<[string, () => string]> = [
      ['an HS256 token signed with the public key text as the secret', () => `Bearer ${hmacToken(claims(), pem(rsa.publicKey))}`],
      ['an RS256 token signed with another private key', () => `Bearer ${asymmetricToken('RS256', otherRsa.privateKey, claims())}`],
      [
        'an RS256 token signed with another key that carries its public key in a jwk header',
        () => `Bearer ${asymmetricToken('RS256', otherRsa.privateKey, claims(), { jwk: otherRsa.publicKey.export({ format: 'jwk' }) })}`,
      ],
      ['an ES256 token (an algorithm pinned, but not the key type)', () => `Bearer ${asymmetricToken('ES256', ec.privateKey, claims())}`],
      ['alg "none" with an empty signature', () => `Bearer ${unsignedToken(claims())}`],
      ['an RS256 token without exp', () => `Bearer ${asymmetricToken('RS256', rsa.privateKey, without('exp'))}`],
      ['an RS256 token without sub', () => `Bearer ${asymmetricToken('RS256', rsa.privateKey, without('sub'))}`],
    ];
    for (const [what, header] of refused) {
      it(`refuses ${what} with 401 TOKEN_INVALID and writes nothing`, async () => {
        await expectRefused(rs, header());
      });
    }

    it('refuses an expired RS256 token with 401 TOKEN_EXPIRED and writes nothing', async () => {
      await expectRefused(rs, `Bearer ${asymmetricToken('RS256', rsa.privateKey, claims({ exp: nowSeconds() - 60 }))}`, 'TOKEN_EXPIRED');
    });
  });

  describe('RS256/ES256 server with an EC JWT_PUBLIC_KEY', () => {
    it('accepts an ES256 token signed with the matching private key', async () => {
      await expectAccepted(es, `Bearer ${asymmetricToken('ES256', ec.privateKey, claims())}`);
    });

    const refused: Array<[string, () => string]> = [
      ['an HS256 token signed with the public key text as the secret', () => `Bearer ${hmacToken(claims(), pem(ec.publicKey))}`],
      ['an RS256 token', () => `Bearer ${asymmetricToken('RS256', rsa.privateKey, claims())}`],
      ['an ES256 token signed with another private key', () => `Bearer ${asymmetricToken('ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, claims())}`],
      ['alg "none" with an empty signature', () => `Bearer ${unsignedToken(claims())}`],
    ];
    for (const [what, header] of refused) {
      it(`refuses ${what} with 401 and writes nothing`, async () => {
        await expectRefused(es, header());
      });
    }
  });
});
