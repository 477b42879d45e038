import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The server as `npm start` runs it (`node --import tsx src/main/server.ts`): the start-up lines,
 * the development token that works at once, fail-fast configuration, and a graceful SIGTERM that
 * lets an in-flight push finish.
 */

interface Started {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  exited: Promise<number | null>;
}

function start(env: Record<string, string>): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/server.ts'], {
    env: { PATH: process.env['PATH'] ?? '', PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: 'pipe',
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitFor(started: Started, pattern: RegExp, ms = 120_000): Promise<RegExpMatchArray> {
  const until = Date.now() + ms;
  for (;;) {
    const m = pattern.exec(started.output());
    if (m) return m;
    if (Date.now() > until || started.child.exitCode !== null) throw new Error(`no ${pattern} in output:\n${started.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the server process', function () {
  this.timeout(300_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sync-process-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints where it listens and a development token that works, and finishes an in-flight push on SIGTERM', async () => {
    const s = start({ PGLITE_DATA_DIR: join(dir, 'pglite') });
    try {
      const [, url] = await waitFor(s, /listening on (http:\/\/127\.0\.0\.1:\d+)/);
      const [, token] = await waitFor(s, /development token for user "demo-user".*\n(\S+)/);
      const pulled = await fetch(`${url}/api/sync/pull?last_pulled_at=0`, { headers: { authorization: `Bearer ${token}` } });
      expect(pulled.status).to.equal(200);

      // The push is in flight when SIGTERM arrives: its first half is sent, the rest comes after.
      const ideas = Array.from({ length: 1000 }, (_, i) => ({ id: `i${i}`, text: `idea ${i}` }));
      const body = JSON.stringify({ changes: { ideas: { created: ideas } } });
      const answer = new Promise<number>((resolve, reject) => {
        const req = request(`${url}/api/sync/push`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.write(body.slice(0, 1000));
        setTimeout(() => {
          s.child.kill('SIGTERM');
          setTimeout(() => req.end(body.slice(1000)), 300);
        }, 300);
      });
      expect(await answer).to.equal(200);
      expect(await s.exited).to.equal(0);
    } finally {
      s.child.kill('SIGKILL');
    }

    // The data and the development secret survive a restart.
    const again = start({ PGLITE_DATA_DIR: join(dir, 'pglite') });
    try {
      const [, url] = await waitFor(again, /listening on (http:\/\/127\.0\.0\.1:\d+)/);
      const [, token] = await waitFor(again, /development token for user "demo-user".*\n(\S+)/);
      const pulled = await fetch(`${url}/api/sync/pull?last_pulled_at=0&tables=ideas`, { headers: { authorization: `Bearer ${token}` } });
      expect(((await pulled.json()) as any).changes.ideas.created).to.have.length(1000);
    } finally {
      again.child.kill('SIGKILL');
    }
  });

  for (const [variable, value] of [
    ['PORT', 'eighty'],
    ['SYNC_MAX_PUSH_RECORDS', '0'],
    ['DATABASE_URL', 'mysql://nope'],
    ['JWT_SECRET', 'short'],
  ] as const) {
    it(`refuses to start with a bad ${variable}, naming it`, async () => {
      const s = start({ PGLITE_DATA_DIR: join(dir, 'pglite'), [variable]: value });
      expect(await s.exited).to.equal(1);
      expect(s.output()).to.contain('Configuration error').and.to.contain(variable);
    });
  }

  // Issue 20, item 2: every replica or redeploy on one PostgreSQL would generate its own key.
  it('refuses to start on a PostgreSQL server with a generated field key, naming FIELD_ENCRYPTION_KEYS and the opt-in', async () => {
    const s = start({ PGLITE_DATA_DIR: join(dir, 'pglite'), DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', JWT_SECRET: 'x'.repeat(32) });
    expect(await s.exited).to.equal(1);
    expect(s.output()).to.contain('Configuration error').and.to.contain('FIELD_ENCRYPTION_KEYS').and.to.contain('ALLOW_GENERATED_FIELD_KEY');
  });

  it('refuses to start in production without a JWT key', async () => {
    const s = start({ PGLITE_DATA_DIR: join(dir, 'pglite'), NODE_ENV: 'production' });
    expect(await s.exited).to.equal(1);
    expect(s.output()).to.contain('JWT_SECRET');
  });
});
