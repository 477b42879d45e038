import { request } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { getDatabase } from '../support/databases';
import { send } from '../support/http-helpers';
import { startTestServer, type TestServer } from '../support/server';

/**
 * /admin as the server serves it (test/browser drives the real page): the built files with a
 * strict CSP, a 503 page naming the build command when they are missing, nothing outside the
 * build directory. Over a stand-in build directory, so this runs without Vite. On PGlite only: no
 * SQL is involved.
 */
describe('dashboard files at /admin [pglite]', () => {
  let dir: string;
  let built: TestServer;
  let unbuilt: TestServer;
  before(async function () {
    this.timeout(60_000);
    dir = mkdtempSync(join(tmpdir(), 'admin-ui-'));
    mkdirSync(join(dir, 'build', 'assets'), { recursive: true });
    writeFileSync(join(dir, 'build', 'index.html'), '<!doctype html><title>dashboard</title><script type="module" src="/admin/assets/app-1.js"></script>');
    writeFileSync(join(dir, 'build', 'assets', 'app-1.js'), 'console.log("dashboard")');
    writeFileSync(join(dir, 'secret.txt'), 'outside the build');
    const { db } = await getDatabase('pglite');
    built = await startTestServer(db, { ADMIN_UI_DIR: join(dir, 'build') });
    unbuilt = await startTestServer(db, { ADMIN_UI_DIR: join(dir, 'missing') });
  });
  after(async () => {
    await built?.close();
    await unbuilt?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page without a token, with a CSP that allows no inline script and nothing from elsewhere', async () => {
    for (const path of ['/admin', '/admin/', '/admin/index.html']) {
      const page = await send(`${built.url}${path}`);
      expect([page.status, page.headers.get('content-type')], path).to.deep.equal([200, 'text/html; charset=utf-8']);
      expect(page.text).to.include('<title>dashboard</title>');
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp).to.include("script-src 'self'").and.include("default-src 'none'").and.include("frame-ancestors 'none'").and.include("connect-src 'self'");
      expect(csp).not.to.match(/unsafe-inline|unsafe-eval|\*|https?:/);
      expect(page.headers.get('x-frame-options')).to.equal('DENY');
      expect(page.headers.get('x-content-type-options')).to.equal('nosniff');
      expect(page.headers.get('referrer-policy')).to.equal('no-referrer');
      expect(page.headers.get('cache-control')).to.equal('no-cache');
    }
    const script = await send(`${built.url}/admin/assets/app-1.js`);
    expect([script.status, script.text]).to.deep.equal([200, 'console.log("dashboard")']);
    expect(script.headers.get('content-type')).to.match(/javascript/);
    expect(script.headers.get('cache-control')).to.match(/immutable/);
  });

  it('serves nothing outside the build directory, and no other path or method (404 NOT_FOUND)', async () => {
    // Tried: a missing asset, traversal plain and encoded, an unknown page, a POST.
    for (const path of ['/admin/assets/nope.js', '/admin/assets/../../secret.txt', '/admin/assets/..%2f..%2fsecret.txt', '/admin/assets/%2e%2e/%2e%2e/secret.txt', '/admin/elsewhere', '/admin/secret.txt']) {
      const answer = await send(`${built.url}${path}`);
      expect(answer.status, path).to.equal(404);
      expect(answer.text, path).not.to.include('outside the build');
    }
    // fetch normalizes dot segments; a raw request sends them as they are.
    for (const path of ['/admin/assets/../../secret.txt', '/admin/assets/../../../secret.txt', '/admin/assets/%2e%2e/%2e%2e/secret.txt']) {
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        request(`${built.url}${path}`, { path }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, text }));
        })
          .on('error', reject)
          .end();
      });
      expect(status, `raw ${path}`).to.equal(404);
      expect(text, `raw ${path}`).not.to.include('outside the build');
    }
    const post = await send(`${built.url}/admin`, { method: 'POST', body: 'token=x' });
    expect([post.status, post.body?.error?.code]).to.deep.equal([404, 'NOT_FOUND']);
  });

  it('answers 503 with a page naming npm run build:admin when the build is missing', async () => {
    const page = await send(`${unbuilt.url}/admin`);
    expect(page.status).to.equal(503);
    expect(page.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    expect(page.text).to.include('npm run build:admin').and.include(join(dir, 'missing'));
    expect(page.headers.get('content-security-policy')).to.include("default-src 'none'");
    // The API is unaffected.
    expect((await send(`${unbuilt.url}/healthz`)).status).to.equal(200);
  });
});
