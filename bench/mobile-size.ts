/**
 * `npm run bench -- mobile-size`: what @note-sync/mobile adds to an app's JavaScript bundle.
 * A proxy for Metro + Hermes (measured on the example app): esbuild bundles a tiny app entry that
 * imports the package, minified, with its dependencies included and react / react-native left
 * out, so the bundle is the package's share. Lines:
 * - `package`: the built package (mobile/lib) as an app installs it, tree-shaken (as esbuild,
 *   webpack or Metro with tree shaking would) and not (as Metro does by default: every module
 *   reached is kept whole; here that is lib/index.js and neverthrow, already small).
 * - `share`: the same app bundled from the sources, split by origin (domain + client, zod/mini,
 *   neverthrow, fflate): minified bytes exactly, gzip as the share of the whole by bytes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Metafile, type Plugin } from 'esbuild';
import { report } from './support';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MOBILE = process.env['MOBILE_SIZE_ROOT'] ? resolve(process.env['MOBILE_SIZE_ROOT'], 'mobile') : join(REPO, 'mobile');

/** What an app typically imports: the client, its adapters, and the status type. */
const APP = `
import { createSyncClient, OpSqliteDriver, AsyncStorageCheckpointStore, NetInfoNetworkMonitor, KeychainKeyStore, openEncryptedOpSqlite } from '@note-sync/mobile';
import { open } from '@op-engineering/op-sqlite';
import AsyncStorage from '@react-native-async-storage/async-storage';
import NetInfo from '@react-native-community/netinfo';
import * as Keychain from 'react-native-keychain';
export async function init() {
  const db = await openEncryptedOpSqlite(open, { name: 'notes.db', keyStore: new KeychainKeyStore(Keychain), databaseExists: async () => false });
  return createSyncClient({ db, checkpoints: new AsyncStorageCheckpointStore(AsyncStorage), network: new NetInfoNetworkMonitor(NetInfo), server: { baseUrl: 'https://sync.example.com', getToken: () => 'token' } });
}
export { OpSqliteDriver };
`;
const EXTERNAL = ['react', 'react-native', '@op-engineering/op-sqlite', '@react-native-async-storage/async-storage', '@react-native-community/netinfo', 'react-native-keychain'];

function origin(path: string): string {
  if (path.includes('node_modules/zod/')) return 'zod/mini';
  if (path.includes('node_modules/neverthrow/')) return 'neverthrow';
  if (path.includes('node_modules/fflate/')) return 'fflate (gzip)';
  if (path.includes('src/domain/') || path.includes('mobile/src/') || path.includes('mobile/lib/') || path.startsWith('app.')) return 'domain + client';
  return `other: ${path}`;
}

async function bundle(entryDir: string, target: string, treeShaking: boolean): Promise<{ code: Uint8Array; metafile: Metafile }> {
  const pkg: Plugin = {
    name: 'note-sync-mobile',
    setup(b) {
      b.onResolve({ filter: /^@note-sync\/mobile$/ }, () => ({ path: target }));
      // As in mobile/scripts/build.mjs: the domain is pure, so a module nothing is used from is left out.
      b.onResolve({ filter: /src\/domain/ }, async (args) => {
        if (args.pluginData === 'again') return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'again' });
        return r.path.includes('/src/domain/') ? { ...r, sideEffects: false } : r;
      });
    },
  };
  const r = await build({
    absWorkingDir: entryDir,
    entryPoints: ['app.js'],
    bundle: true,
    minify: true,
    treeShaking,
    format: 'esm',
    platform: 'neutral',
    target: 'es2020',
    mainFields: ['react-native', 'module', 'main'],
    conditions: ['react-native', 'import', 'default'],
    nodePaths: [join(REPO, 'node_modules')],
    external: EXTERNAL,
    write: false,
    metafile: true,
    logLevel: 'error',
    plugins: [pkg],
  });
  return { code: r.outputFiles[0]!.contents, metafile: r.metafile };
}

const gzipBytes = (code: Uint8Array) => gzipSync(code, { level: 9 }).byteLength;

export async function benchMobileSize(): Promise<void> {
  execFileSync(process.execPath, [join(MOBILE, 'scripts/build.mjs')], { cwd: MOBILE, stdio: ['ignore', 'ignore', 'inherit'] });
  const dir = mkdtempSync(join(tmpdir(), 'mobile-size-'));
  try {
    writeFileSync(join(dir, 'app.js'), APP);
    for (const treeShaking of [true, false]) {
      const { code } = await bundle(dir, join(MOBILE, 'lib/index.js'), treeShaking);
      report({ bench: 'mobile-size', line: 'package', tree_shaking: treeShaking, bytes: code.byteLength, gzip_bytes: gzipBytes(code) });
    }
    const { code, metafile } = await bundle(dir, join(MOBILE, 'src/index.ts'), true);
    const total = code.byteLength;
    const gzipTotal = gzipBytes(code);
    const byOrigin = new Map<string, number>();
    for (const [path, input] of Object.entries(Object.values(metafile.outputs)[0]!.inputs)) byOrigin.set(origin(path), (byOrigin.get(origin(path)) ?? 0) + input.bytesInOutput);
    for (const [name, bytes] of [...byOrigin].sort((a, b) => b[1] - a[1])) {
      report({ bench: 'mobile-size', line: 'share', dependency: name, bytes, gzip_bytes_share: Math.round((gzipTotal * bytes) / total) });
    }
    report({ bench: 'mobile-size', line: 'share', dependency: 'total', bytes: total, gzip_bytes: gzipTotal });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
