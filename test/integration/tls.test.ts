import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { request } from 'node:https';
import { ConfigError, loadConfig } from '../../src/main/config';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';
import { makeTestPki, type TestPki } from '../support/tls';

/** HTTPS with TLS_CERT_FILE/TLS_KEY_FILE, checked by a client that verifies the certificate. */
function get(url: string, ca: string, token?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describeEachDatabase('TLS', (ctx) => {
  let pki: TestPki;
  let server: TestServer;
  before(async () => {
    pki = makeTestPki();
    server = await startTestServer(ctx.database.db, { TLS_CERT_FILE: pki.certFile, TLS_KEY_FILE: pki.keyFile });
  });
  after(async () => {
    await server.close();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  it('serves HTTPS, with HSTS, to a client that trusts the CA', async () => {
    expect(server.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await get(`${server.url}/healthz`, pki.caCert);
    expect(health.status).to.equal(200);
    expect(health.headers['strict-transport-security']).to.equal('max-age=31536000; includeSubDomains');
    const pull = await get(`${server.url}/api/sync/pull?last_pulled_at=0`, pki.caCert, server.token('tls-user'));
    expect(pull.status).to.equal(200);
    expect(JSON.parse(pull.body).timestamp).to.be.greaterThan(0);
  });

  it('is refused by a client that trusts another CA', async () => {
    const failure = await get(`${server.url}/healthz`, pki.otherCaCert).then(
      () => null,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(failure?.code).to.be.oneOf(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']);
  });
});

describe('TLS configuration', () => {
  it('refuses production without TLS unless a proxy terminates it, naming the variables', () => {
    const base = { JWT_SECRET: 'x'.repeat(32), JWT_ISSUER: 'https://id.example', JWT_AUDIENCE: 'note-sync', NODE_ENV: 'production', FIELD_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32).toString('base64')}`, DATABASE_URL: 'postgres://app@127.0.0.1:5432/notes' };
    expect(() => loadConfig(base)).to.throw(ConfigError, /TLS_CERT_FILE.*TLS_TERMINATED_UPSTREAM/);
    expect(loadConfig({ ...base, TLS_TERMINATED_UPSTREAM: 'true' }).tlsTerminatedUpstream).to.equal(true);
  });

  it('refuses half a TLS configuration, a missing file, and a non-boolean TLS_TERMINATED_UPSTREAM', () => {
    expect(() => loadConfig({ TLS_CERT_FILE: '/etc/hostname' })).to.throw(ConfigError, /TLS_KEY_FILE/);
    expect(() => loadConfig({ TLS_CERT_FILE: '/nope.crt', TLS_KEY_FILE: '/nope.key' })).to.throw(ConfigError, /TLS_CERT_FILE/);
    expect(() => loadConfig({ TLS_TERMINATED_UPSTREAM: 'yes' })).to.throw(ConfigError, /TLS_TERMINATED_UPSTREAM/);
  });
});
