import { expect } from 'chai';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import jwt from 'jsonwebtoken';
import { openDatabase } from '../../src/adapters/postgres/connection';
import { exitWithin, nonJsonLines, portClosed, processAlive, spawnCommand, waitForOutput, type Spawned } from '../support/processes';

/**
 * The production build as an operator deploys it: `npm run build:server` output, the package
 * manifest and docs/openapi.yaml copied to a fresh folder whose node_modules holds the runtime
 * dependencies only (every devDependency left out: no tsx, no TypeScript, no esbuild), run with
 * plain `node` and no NODE_OPTIONS, in production mode. Migrations run from the build, a device
 * pushes and pulls over HTTP, every line the server writes is JSON, and SIGINT to
 * `npm run start:prod` (the documented command) stops it cleanly.
 */

const repo = process.cwd();
const SECRET = 'built-server-secret-0123456789abcdef0123';

/** node_modules of links to the repo's packages, without the devDependencies (as npm ci --omit=dev). */
function runtimeNodeModules(target: string): void {
  const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const dev = new Set(Object.keys(manifest.devDependencies));
  // Tools that come only with the dev ones (tsx's esbuild binaries, its tsconfig reader).
  for (const name of ['.bin', '@esbuild', 'get-tsconfig', 'typescript', 'tsx', 'esbuild']) dev.add(name);
  mkdirSync(target, { recursive: true });
  const source = join(repo, 'node_modules');
  for (const entry of readdirSync(source)) {
    if (dev.has(entry) || entry.startsWith('.')) continue;
    if (entry.startsWith('@')) {
      mkdirSync(join(target, entry));
      for (const pkg of readdirSync(join(source, entry))) {
        if (!dev.has(`${entry}/${pkg}`)) symlinkSync(join(source, entry, pkg), join(target, entry, pkg));
      }
    } else {
      symlinkSync(join(source, entry), join(target, entry));
    }
  }
}

async function run(s: Spawned, ms = 120_000): Promise<string> {
  const exit = await exitWithin(s, ms);
  expect(exit.code, s.output()).to.equal(0);
  return s.output();
}

describe('the production build', function () {
  this.timeout(600_000);
  let dir: string;
  let env: Record<string, string>;
  let dropDatabase: (() => Promise<void>) | undefined;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'sync-built-'));
    await run(spawnCommand(process.execPath, [join(repo, 'scripts/build-server.mjs'), '--outdir', join(dir, 'dist')], repo, {}));
    copyFileSync(join(repo, 'package.json'), join(dir, 'package.json'));
    mkdirSync(join(dir, 'docs'));
    copyFileSync(join(repo, 'docs/openapi.yaml'), join(dir, 'docs/openapi.yaml'));
    runtimeNodeModules(join(dir, 'node_modules'));
    env = {
      NODE_ENV: 'production',
      JWT_SECRET: SECRET,
      JWT_ISSUER: 'https://id.example.test',
      JWT_AUDIENCE: 'note-sync',
      FIELD_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 5).toString('base64')}`,
      TLS_TERMINATED_UPSTREAM: 'true',
      PORT: '0',
    };
    const url = process.env['DATABASE_URL'];
    if (url) {
      // A database of its own: the build's migrations start from nothing.
      const name = `sync_built_${process.pid}_${Date.now().toString(36)}`;
      const admin = openDatabase({ kind: 'postgres', url, poolMax: 1 });
      await admin.raw(`CREATE DATABASE ${name}`);
      dropDatabase = async () => {
        await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.destroy();
      };
      const own = new URL(url);
      own.pathname = `/${name}`;
      env['DATABASE_URL'] = own.href;
    } else {
      env['PGLITE_DATA_DIR'] = join(dir, 'pglite');
      env['ALLOW_EMBEDDED_DATABASE_IN_PRODUCTION'] = 'true';
    }
  });

  after(async () => {
    await dropDatabase?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds no TypeScript tooling: the deploy folder has no tsx, typescript or esbuild', () => {
    for (const tool of ['tsx', 'typescript', 'esbuild']) expect(existsSync(join(dir, 'node_modules', tool)), tool).to.equal(false);
    expect(existsSync(join(dir, 'node_modules', 'knex'))).to.equal(true);
  });

  it('migrates from the build, then serves push and pull, logs only JSON lines, and stops on SIGINT to `npm run start:prod`', async () => {
    const migrated = await run(spawnCommand(process.execPath, ['dist/main/migrate.js'], dir, env));
    expect(migrated).to.match(/applied 001-sync-tables, .*009-stored-bytes, 010-written-by, 011-sync-stats-minutes/);

    const s = spawnCommand('npm', ['run', '-s', 'start:prod'], dir, env);
    let serverPid = 0;
    try {
      const [, port] = await waitForOutput(s, /listening on http:\/\/127\.0\.0\.1:(\d+)/);
      serverPid = Number((await waitForOutput(s, /"pid":(\d+)/))[1]);
      // Plain `node dist/main/server.js`: no loader on its command line nor in its environment.
      const cmdline = readFileSync(`/proc/${serverPid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      expect(cmdline.slice(1)).to.deep.equal(['dist/main/server.js']);
      expect(readFileSync(`/proc/${serverPid}/environ`, 'utf8')).to.not.match(/NODE_OPTIONS=.*(tsx|--import|--loader)/);

      const base = `http://127.0.0.1:${port}`;
      const token = jwt.sign({ sub: 'built-user' }, SECRET, { algorithm: 'HS256', expiresIn: 600, issuer: env['JWT_ISSUER'], audience: env['JWT_AUDIENCE'] });
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const pushed = await fetch(`${base}/api/sync/push?last_pulled_at=0`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ changes: { ideas: { created: [{ id: 'built-1', text: 'from the build' }] } } }),
      });
      expect(pushed.status, await pushed.clone().text()).to.equal(200);
      const pulled = await fetch(`${base}/api/sync/pull?last_pulled_at=0&tables=ideas`, { headers });
      expect(pulled.status).to.equal(200);
      const body = (await pulled.json()) as { changes: { ideas: { created: Array<{ id: string; text: string }> } } };
      expect(body.changes.ideas.created.map((r) => [r.id, r.text])).to.deep.equal([['built-1', 'from the build']]);
      // The API document ships with the build (the copied docs/openapi.yaml).
      expect((await fetch(`${base}/api/openapi.json`, { headers })).status).to.equal(200);

      s.child.kill('SIGINT');
      expect((await exitWithin(s, 60_000)).code).to.equal(0);
      expect(processAlive(serverPid), 'the server process is gone').to.equal(false);
      expect(await portClosed(Number(port))).to.equal(true);
      expect(s.output()).to.match(/"msg":"shutdown complete"/);
      expect(s.output(), 'migrate.js applied them all before the start').to.not.contain('migrations applied');
      expect(nonJsonLines(s.output()), 'plain lines among the JSON log').to.deep.equal([]);
    } finally {
      s.child.kill('SIGKILL');
      if (serverPid && processAlive(serverPid)) process.kill(serverPid, 'SIGKILL');
    }
  });

  it('the built knexfile serves the knex CLI where no TypeScript loader is installed', async () => {
    const out = await run(spawnCommand(process.execPath, [resolve(dir, 'node_modules/knex/bin/cli.js'), '--knexfile', 'dist/knexfile.js', 'migrate:status'], dir, env));
    expect(out).to.match(/Found 11 Completed Migration file\/files\.\s+001-sync-tables\s+002-sync-logs\s+003-reencrypt-without-stamp\s+004-first-written-by\s+005-stamp-once-per-statement\s+006-retention\s+007-encrypt-derived-text\s+008-field-key-fingerprints\s+009-stored-bytes\s+010-written-by\s+011-sync-stats-minutes/);
    expect(out).to.contain('No Pending Migration files Found.');
  });
});
