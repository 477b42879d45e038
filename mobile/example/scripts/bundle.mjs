#!/usr/bin/env node
/**
 * React Native's own toolchain over the example, as CI runs it:
 *   1. `npm pack` the package in mobile/ (its prepack builds mobile/lib),
 *   2. install that tarball into the example without touching package.json or the lockfile
 *      (`npm install --no-save`; the example's other dependencies come from `npm ci`),
 *   3. tsc type-checks the example against the package's published .d.ts (tsconfig.json),
 *   4. Metro bundles the example for android and ios in release mode (`expo export:embed
 *      --dev false --minify true`), from an empty cache,
 *   5. hermesc (from the hermes-compiler package react-native depends on) compiles the android
 *      bundle to Hermes bytecode.
 * Any failure exits non-zero: npm, Metro, a hermesc error, and the hermesc warnings that mean a
 * crash at app start (see checkHermesWarnings). The last stdout line is a JSON summary.
 *
 *   node scripts/bundle.mjs [--no-pack | --pack-only] [--no-typecheck] [--platforms android,ios] [--entry index.js] [--out dist]
 * --pack-only packs and installs the package and stops (`npm run use-package`): run it again after
 * any `npm install` in the example, which removes a package installed with --no-save.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const exampleDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const packageDir = resolve(exampleDir, '..');

export class ToolchainError extends Error {}

/**
 * Metro's caches (transforms, file map) go to os.tmpdir(); Metro is pointed at this folder instead,
 * emptied by every run that packs (see emptyMetroCache), so CI never reuses a cache a fresh clone
 * would not have. (`--reset-cache` cannot do it: Expo ignores it when CI is set.)
 */
// Outside the project, or Metro would crawl its own cache files.
export const metroTmp = join(tmpdir(), 'note-sync-example-metro');

export function emptyMetroCache() {
  rmSync(metroTmp, { recursive: true, force: true });
}

function run(cmd, args, opts = {}) {
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: exampleDir, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts, env: { ...process.env, CI: '1', ...opts.env } });
  const seconds = (Date.now() - started) / 1000;
  if (r.error) throw new ToolchainError(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', seconds };
}

function must(result, what) {
  if (result.status !== 0) {
    throw new ToolchainError(`${what} failed (exit ${result.status}):\n${tail(result.stdout)}\n${tail(result.stderr)}`);
  }
  return result;
}

const tail = (s, n = 60) => s.split('\n').slice(-n).join('\n');
const sha1 = (file) => createHash('sha1').update(readFileSync(file)).digest('hex');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Packs mobile/ into .pack/ and installs the tarball into the example, leaving the lockfile as it was. */
export function packAndInstall() {
  if (!existsSync(join(exampleDir, 'node_modules'))) {
    throw new ToolchainError('mobile/example/node_modules is missing: run `npm ci` in mobile/example first.');
  }
  const packDir = join(exampleDir, '.pack');
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });
  const pack = must(run(npm, ['pack', '--json', '--pack-destination', packDir], { cwd: packageDir }), 'npm pack (in mobile/)');
  const json = pack.stdout.slice(pack.stdout.indexOf('['));
  const [{ filename, size }] = JSON.parse(json);
  const tarball = join(packDir, filename.replace(/^@/, '').replace('/', '-'));
  if (!existsSync(tarball)) throw new ToolchainError(`npm pack said ${filename}, but ${tarball} is not there`);

  const lock = join(exampleDir, 'package-lock.json');
  const manifest = join(exampleDir, 'package.json');
  const before = [sha1(lock), sha1(manifest)];
  const install = must(run(npm, ['install', '--no-save', '--no-audit', '--no-fund', tarball]), `npm install --no-save ${filename}`);
  if (sha1(lock) !== before[0] || sha1(manifest) !== before[1]) {
    throw new ToolchainError('installing the tarball changed mobile/example/package.json or package-lock.json; it must not');
  }
  const installed = JSON.parse(readFileSync(join(exampleDir, 'node_modules/@note-sync/mobile/package.json'), 'utf8'));
  return { tarball, tarballBytes: size, version: installed.version, packSeconds: pack.seconds, installSeconds: install.seconds };
}

/** The example's TypeScript against the installed package's types, as an app's own `tsc` would. */
export function typecheck() {
  const r = run(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '-p', 'tsconfig.json']);
  if (r.status !== 0) throw new ToolchainError(`tsc (mobile/example) failed:\n${tail(r.stdout)}\n${tail(r.stderr)}`);
  return { seconds: r.seconds };
}

/** Metro, release mode, through Expo's `export:embed` (what `expo run:*` release builds call). */
export function bundle({ platform, entry = 'index.js', outDir }) {
  mkdirSync(outDir, { recursive: true });
  const bundleFile = join(outDir, `index.${platform}.bundle`);
  const mapFile = `${bundleFile}.map`;
  rmSync(bundleFile, { force: true });
  const args = [
    require.resolve('expo/bin/cli'), 'export:embed',
    '--platform', platform, '--dev', 'false', '--minify', 'true',
    '--entry-file', entry,
    '--bundle-output', bundleFile, '--sourcemap-output', mapFile,
    '--assets-dest', join(outDir, 'assets'),
  ];
  mkdirSync(metroTmp, { recursive: true });
  const r = must(run(process.execPath, args, { env: { TMPDIR: metroTmp } }), `Metro (${platform}, ${entry})`);
  if (!existsSync(bundleFile) || statSync(bundleFile).size === 0) throw new ToolchainError(`Metro wrote no ${bundleFile}`);
  const modules = /Bundled \d+ms .*\((\d+) modules\)/.exec(r.stdout + r.stderr)?.[1];
  return { bundleFile, mapFile, seconds: r.seconds, modules: modules ? Number(modules) : null, ...sizes(bundleFile) };
}

export function sizes(file) {
  const bytes = readFileSync(file);
  return { bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length };
}

const require = createRequire(join(exampleDir, 'package.json'));

/** The hermesc react-native itself uses: hermes-compiler, resolved from react-native's folder. */
export function hermesc() {
  const fromRn = createRequire(require.resolve('react-native/package.json'));
  const pkg = fromRn.resolve('hermes-compiler/package.json');
  const sub = { linux: 'linux64-bin/hermesc', darwin: 'osx-bin/hermesc', win32: 'win64-bin/hermesc.exe' }[process.platform];
  return { path: join(dirname(pkg), 'hermesc', sub), version: JSON.parse(readFileSync(pkg, 'utf8')).version };
}

/**
 * hermesc only warns about most things that throw at run time. Two kinds fail here:
 * - "the variable "await" was not declared": a top-level `await` that Metro left inside a plain
 *   function; on a device it is `ReferenceError: Property 'await' doesn't exist` at app start.
 * - Node-only globals (Buffer, __dirname, __filename): never defined in React Native.
 * Other undeclared names (fetch, URL, TextEncoder, nativeFabricUIManager…) are globals React Native
 * installs at run time; they are listed in the summary. hermesc reports each name once.
 */
export const FATAL_UNDECLARED = ['await', 'Buffer', '__dirname', '__filename'];

export function checkHermesWarnings(stderr) {
  const undeclared = [...new Set([...stderr.matchAll(/warning: the variable "([^"]+)" was not declared/g)].map((m) => m[1]))].sort();
  const errors = stderr.split('\n').filter((l) => /: error: /.test(l));
  const fatal = undeclared.filter((n) => FATAL_UNDECLARED.includes(n));
  const problems = [
    ...errors,
    ...fatal.map((n) =>
      n === 'await'
        ? 'hermesc: the variable "await" was not declared — a top-level await reached the bundle (ReferenceError: Property \'await\' doesn\'t exist at app start); call async set-up from an effect instead'
        : `hermesc: the variable "${n}" was not declared — a Node-only global that React Native does not define`,
    ),
  ];
  return { undeclared, problems };
}

/** Compiles a bundle to Hermes bytecode (-O, as React Native's release build does). */
export function compileHermes({ bundleFile, outFile = bundleFile.replace(/\.bundle$/, '.hbc') }) {
  const h = hermesc();
  rmSync(outFile, { force: true });
  const r = run(h.path, ['-emit-binary', '-O', '-output-source-map', '-out', outFile, bundleFile]);
  const { undeclared, problems } = checkHermesWarnings(r.stderr);
  if (r.status !== 0 || problems.length > 0 || !existsSync(outFile)) {
    throw new ToolchainError(`hermesc ${bundleFile} failed (exit ${r.status}):\n${problems.join('\n') || tail(r.stderr, 20)}`);
  }
  return { hbcFile: outFile, seconds: r.seconds, hermesc: h.version, undeclaredGlobals: undeclared, ...sizes(outFile) };
}

function parseArgs(argv) {
  const opts = { pack: true, typecheck: true, platforms: ['android', 'ios'], entry: 'index.js', out: join(exampleDir, 'dist') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-pack') opts.pack = false;
    else if (a === '--pack-only') { opts.platforms = []; opts.typecheck = false; }
    else if (a === '--no-typecheck') opts.typecheck = false;
    else if (a === '--platforms') opts.platforms = argv[++i].split(',');
    else if (a === '--entry') opts.entry = argv[++i];
    else if (a === '--out') opts.out = resolve(argv[++i]);
    else throw new ToolchainError(`unknown option ${a}`);
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const summary = { ok: false };
  if (opts.pack) {
    summary.package = packAndInstall();
    console.log(`packed and installed ${summary.package.tarball} (${summary.package.tarballBytes} B) in ${(summary.package.packSeconds + summary.package.installSeconds).toFixed(1)} s`);
  }
  if (opts.typecheck) {
    summary.typecheck = typecheck();
    console.log(`tsc: the example type-checks against the package's types (${summary.typecheck.seconds.toFixed(1)} s)`);
  }
  // A packing run starts Metro from an empty cache; --no-pack runs (scratch entries, the bench's
  // later apps) reuse what it built.
  if (opts.pack) emptyMetroCache();
  for (const platform of opts.platforms) {
    const b = bundle({ platform, entry: opts.entry, outDir: join(opts.out, platform) });
    summary[platform] = { bundle: { file: b.bundleFile, bytes: b.bytes, gzipBytes: b.gzipBytes, modules: b.modules, seconds: b.seconds } };
    console.log(`${platform}: Metro ${b.bytes} B (${b.gzipBytes} B gzip), ${b.modules} modules, ${b.seconds.toFixed(1)} s`);
    if (platform === 'android') {
      const h = compileHermes({ bundleFile: b.bundleFile });
      summary[platform].hermes = { file: h.hbcFile, bytes: h.bytes, gzipBytes: h.gzipBytes, seconds: h.seconds, hermesc: h.hermesc, undeclaredGlobals: h.undeclaredGlobals };
      console.log(`android: hermesc ${h.hermesc} ${h.bytes} B (${h.gzipBytes} B gzip), ${h.seconds.toFixed(1)} s`);
    }
  }
  summary.ok = true;
  console.log(JSON.stringify(summary));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e instanceof ToolchainError ? `bundle: ${e.message}` : e);
    console.log(JSON.stringify({ ok: false, error: String(e.message ?? e) }));
    process.exit(1);
  });
}
