import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { open } from '@op-engineering/op-sqlite';
import { TABLE_NAMES } from '../../src/domain';
import { FakeNetworkMonitor } from '../fakes/fake-network-monitor';
import { MemoryAsyncStorage } from '../fakes/memory-async-storage';
import { describeEachDatabase } from '../support/databases';
import { newDeviceFile } from '../support/device';
import { packMobile, REPO, type PackedMobile } from '../support/mobile-package';
import { startTestServer, type TestServer } from '../support/server';

/**
 * The package an app installs (`cd mobile && npm pack`), checked as the app gets it: what the
 * tarball holds, what its code imports, that its types resolve from a consumer project, and that
 * the packed client syncs with the real server.
 */

const run = promisify(execFile);
const SERVER_PACKAGES = ['koa', '@koa/router', 'koa-compress', 'knex', 'knex-pglite', 'pg', '@electric-sql/pglite', 'pino', 'inversify', 'reflect-metadata', 'jsonwebtoken', 'prom-client', 'rate-limiter-flexible', 'raw-body', 'yaml', 'tsx'];
/** Functions only the server runs; the client entry must leave them out. */
const SERVER_ONLY_DOMAIN = ['validatePush', 'parsePullQuery', 'checkSchemaVersion', 'canonicalJson'];

const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
const packageName = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

/** Every module specifier a file names: static imports and re-exports, dynamic imports, require calls. */
function specifiers(code: string): string[] {
  const found: string[] = [];
  for (const re of [/\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const m of code.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

describe('the mobile package (npm pack)', function () {
  this.timeout(240_000);
  let packed: PackedMobile;
  let manifest: { dependencies: Record<string, string>; peerDependencies: Record<string, string> };
  let code: Map<string, string>;

  before(async () => {
    packed = await packMobile();
    manifest = JSON.parse(readFileSync(join(packed.packageDir, 'package.json'), 'utf8'));
    code = new Map(walk(join(packed.packageDir, 'lib')).filter((f) => f.endsWith('.js')).map((f) => [relative(packed.packageDir, f), readFileSync(f, 'utf8')]));
  });

  it('holds the built lib (JavaScript and declarations for both entry points) and no sources', () => {
    for (const f of ['lib/index.js', 'lib/index.d.ts', 'lib/react.js', 'lib/react.d.ts', 'package.json']) expect(packed.files, f).to.include(f);
    for (const f of packed.files) {
      expect(f, 'only lib/, the manifests and readme/license files').to.match(/^(lib\/|package\.json$|react\/package\.json$|README|LICENSE)/);
      if (f.endsWith('.ts')) expect(f, 'TypeScript only as declarations').to.match(/\.d\.ts$/);
    }
  });

  it('imports nothing but its dependencies and peers: no server package, no Node built-in', () => {
    const allowed = new Set([...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies)]);
    const builtins = new Set(builtinModules.flatMap((m) => [m, packageName(m)]));
    expect(code.size).to.be.greaterThan(0);
    for (const [file, text] of code) {
      expect(text, `${file}: an ESM package has no require()`).not.to.match(/\brequire\s*\(/);
      for (const s of specifiers(text)) {
        expect(s, `${file} imports ${s}`).not.to.match(/^node:/);
        if (s.startsWith('.')) continue;
        expect(builtins.has(packageName(s)), `${file} imports the Node built-in ${s}`).to.equal(false);
        expect(SERVER_PACKAGES, `${file} imports ${s}`).not.to.include(packageName(s));
        expect(allowed.has(packageName(s)), `${file} imports ${s}, which the package does not declare`).to.equal(true);
      }
    }
    for (const dep of Object.keys(manifest.dependencies)) expect(SERVER_PACKAGES, `dependency ${dep}`).not.to.include(dep);
    expect(Object.keys(manifest.dependencies), 'zod and fflate are bundled (tree-shaken), not installed').to.deep.equal(['neverthrow']);
  });

  it('bundles the client and the domain modules it uses, and none of the server (by the modules esbuild took in)', () => {
    const modules = [...code.values()].flatMap((text) => [...text.matchAll(/^\/\/ (\S+\.(?:ts|js|mjs))$/gm)].map((m) => m[1]!));
    expect(modules, 'the domain is compiled in').to.include.members(['../src/domain/schema.ts', '../src/domain/change-set.ts', '../src/domain/wire.ts', 'src/sync-client.ts', 'src/sync-engine.ts', 'src/local-database.ts']);
    for (const m of modules) expect(m, 'a module from mobile/src, the domain, zod/mini or fflate').to.match(/^(src\/|\.\.\/src\/domain\/|\.\.\/node_modules\/(zod|fflate)\/)/);
    expect(modules, 'server-only domain modules').not.to.include.members(['../src/domain/push-validation.ts']);
    expect(modules).not.to.include('../src/domain/pull-request.ts');
    expect(modules.filter((m) => m.includes('/zod/v4/locales/')), "zod's English messages only").to.deep.equal(['../node_modules/zod/v4/locales/en.js']);
    for (const [file, text] of code) for (const name of SERVER_ONLY_DOMAIN) expect(text, `${file} holds ${name}`).not.to.include(name);
  });

  it('exports the client and the domain (checked on the packed code, run in Node)', async () => {
    const lib = await import(pathToFileURL(join(packed.packageDir, 'lib/index.js')).href);
    for (const name of ['createSyncClient', 'SyncClient', 'LocalDatabase', 'LocalWriteError', 'OpSqliteDriver', 'openEncryptedOpSqlite', 'FetchSyncTransport', 'AsyncStorageCheckpointStore', 'NetInfoNetworkMonitor', 'KeychainKeyStore', 'ExpoSecureStoreKeyStore', 'databaseKey', 'openEncryptedDatabase', 'rotateDatabaseKey', 'MissingDatabaseKeyError', 'WrongDatabaseKeyError', 'uuidV4', 'NoSecureRandomSourceError', 'tableSpec', 'columnNames', 'columnSpec', 'retryDelayMs']) {
      expect(lib[name], name).to.be.a('function');
    }
    expect(lib.TABLES.map((t: { name: string }) => t.name)).to.deep.equal(TABLE_NAMES);
    expect([1, 2, 3, 4, 5].map((n) => lib.retryDelayMs(n))).to.deep.equal([1000, 1000, 2000, 3000, 5000]);
    expect(lib.uuidV4()).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await import(pathToFileURL(join(packed.packageDir, 'lib/react.js')).href);
  });

  describe('types, from a consumer project', () => {
    const app = `
import {
  AsyncStorageCheckpointStore, KeychainKeyStore, NetInfoNetworkMonitor, OpSqliteDriver, TABLES, createSyncClient, defineLocalSchema, uuidV4,
  type AsyncStorageLike, type GetToken, type LocalMigration, type KeychainLike, type NetInfoLike, type OpSqliteDatabase, type SyncClient, type SyncClientOptions, type SyncStatus,
} from '@note-sync/mobile';
import * as bindings from '@note-sync/mobile/react';

declare const database: OpSqliteDatabase;
declare const storage: AsyncStorageLike;
declare const netInfo: NetInfoLike;
declare const keychain: KeychainLike;

const server: NonNullable<SyncClientOptions['server']> = { baseUrl: 'https://sync.example.com', getToken: async () => 'token', schemaVersion: 1, timeoutMs: 30_000, compressAboveBytes: 1024 };
const refreshing: GetToken = (o) => (o?.forceRefresh ? 'refreshed' : 'cached');
const steps: LocalMigration[] = [{ toVersion: 2, sql: ['ALTER TABLE "todos" ADD COLUMN "x" INTEGER'], pullColumns: [{ table: 'todos', columns: ['x'] }] }];
const options: SyncClientOptions = {
  db: new OpSqliteDriver(database),
  checkpoints: new AsyncStorageCheckpointStore(storage),
  network: new NetInfoNetworkMonitor(netInfo),
  server: { ...server, getToken: refreshing },
  randomBytes: (n) => new Uint8Array(n),
  localSchema: defineLocalSchema({ migrations: [] }),
};
export const keyStore = new KeychainKeyStore(keychain);

export async function init(): Promise<SyncClient> {
  const client = await createSyncClient(options);
  const status: SyncStatus = client.getStatus();
  const state: 'idle' | 'syncing' | 'offline' | 'error' | 'unauthenticated' = status.state;
  const stop: () => void = client.onUnauthenticated((failure) => void failure.code);
  const result = await client.sync({ priority: 1 });
  const retryable: boolean | null = result.isErr() ? result.error.retryable : null;
  const created: Record<string, unknown> = await client.local.create('captures', { type: 'text', raw_content: 'x' });
  const names: string[] = TABLES.map((t) => t.name);
  const id: string = uuidV4();
  void [state, stop, steps, retryable, created, names, id, bindings];
  return client;
}

// @ts-expect-error baseUrl is a string (proves the option types resolved, not any)
export const wrong: NonNullable<SyncClientOptions['server']> = { baseUrl: 42, getToken: () => 'token' };
// @ts-expect-error createSyncClient needs db, checkpoints and network
void createSyncClient({ server });
`;
    for (const resolution of ['bundler', 'node16'] as const) {
      it(`type-check with moduleResolution ${resolution} and skipLibCheck off`, async () => {
        const dir = packed.consumer;
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
        writeFileSync(join(dir, 'app.ts'), app);
        const module = resolution === 'bundler' ? 'ESNext' : 'Node16';
        const config = { compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, target: 'ES2022', lib: ['ES2022', 'DOM'], types: [], module, moduleResolution: resolution }, files: ['app.ts'] };
        writeFileSync(join(dir, `tsconfig.${resolution}.json`), JSON.stringify(config));
        const tsc = join(REPO, 'node_modules/typescript/bin/tsc');
        const result = await run(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], { cwd: dir }).then(
          () => '',
          (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}` || 'tsc failed',
        );
        expect(result, 'tsc output').to.equal('');
      });
    }
  });
});

describeEachDatabase('the packed mobile client against the real server', (ctx) => {
  let server: TestServer;
  let lib: any;
  const clients: Array<{ close(): Promise<void> }> = [];
  before(async function () {
    this.timeout(240_000);
    const packed = await packMobile();
    lib = await import(pathToFileURL(join(packed.packageDir, 'lib/index.js')).href);
    server = await startTestServer(ctx.database.db);
  });
  after(() => server.close());
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  });

  async function device(user: string) {
    const file = newDeviceFile(user);
    const client = await lib.createSyncClient({
      db: new lib.OpSqliteDriver(open({ name: file.name, location: file.dir })),
      checkpoints: new lib.AsyncStorageCheckpointStore(new MemoryAsyncStorage()),
      network: new FakeNetworkMonitor(true),
      server: { baseUrl: server.url, getToken: () => server.token(user), schemaVersion: 1 },
    });
    clients.push(client);
    return client;
  }

  it("syncs a capture from one device to another, a gzip push included, and refuses a bad value with the domain's reason", async () => {
    const d1 = await device('packed-u1');
    const d2 = await device('packed-u1');
    const long = 'call the plumber about the leak under the sink; '.repeat(60); // 3 KB: the push goes gzip-compressed
    const capture = await d1.local.create('captures', { type: 'text', raw_content: long });
    expect(capture.id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const pushed = await d1.sync();
    expect(pushed.isOk(), JSON.stringify(pushed.error)).to.equal(true);
    expect(d1.getStatus().lastSync.bytesSent, 'compressed: fewer bytes than the text').to.be.below(long.length / 4);
    const pulled = await d2.sync();
    expect(pulled.isOk(), JSON.stringify(pulled.error)).to.equal(true);
    const rows = await d2.local.query('captures');
    expect(rows.map((r: Record<string, unknown>) => [r['id'], r['raw_content']])).to.deep.equal([[capture.id, long]]);

    // Bad input: a number where the column holds text.
    const error = await d1.local.create('ideas', { text: 5 }).then(() => null, (e: unknown) => e);
    expect(error).to.be.instanceOf(lib.LocalWriteError);
    expect(error.details).to.have.length(1);
    expect(error.details[0]).to.include({ table: 'ideas', column: 'text', reason: 'Invalid input: expected string, received number' });
  });
});
