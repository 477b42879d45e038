/**
 * Builds the package into lib/: the JavaScript with esbuild, the declarations with tsc.
 *
 * esbuild rather than react-native-builder-bob: bob compiles file by file inside mobile/, so it
 * cannot take the domain from ../src/domain (the domain would have to be copied into mobile/),
 * and it would leave `zod/mini` and `fflate` as imports, which Metro (it does not tree-shake)
 * resolves to the whole packages: zod/mini re-exports all 64 of zod's locales. Bundling here
 * puts the domain modules the client imports, and only the parts of zod/mini and fflate it
 * calls, into lib/ (see docs/mobile.md, "Size"). tsup would do the same with esbuild, but its
 * declaration step needs TypeScript's JavaScript API, which TypeScript 7 no longer has: the
 * declarations come from `tsc` itself.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const lib = join(root, 'lib');
const domain = resolve(root, '../src/domain') + sep;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

rmSync(lib, { recursive: true, force: true });

// Runtime dependencies and peers stay imports; everything else (the domain, zod/mini, fflate) is bundled.
const external = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})];

await build({
  absWorkingDir: root,
  entryPoints: { index: 'src/index.ts', react: 'src/react/index.ts' },
  outdir: 'lib',
  bundle: true,
  splitting: true, // one copy of the client shared by both entry points
  format: 'esm',
  platform: 'neutral',
  // Hermes and Metro's Babel both take ES2020; later syntax (class fields) is lowered here.
  target: 'es2020',
  mainFields: ['module', 'main'],
  conditions: ['react-native', 'import', 'default'],
  external: [...external, ...external.map((e) => `${e}/*`)],
  treeShaking: true,
  legalComments: 'eof',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
  plugins: [
    {
      // The domain's modules have no side effects (docs/architecture.md: pure, no I/O): a module
      // the client imports nothing from is left out whole (push validation, pull-query parsing).
      name: 'domain-is-pure',
      setup(b) {
        b.onLoad({ filter: /\.ts$/ }, (args) => (args.path.startsWith(domain) ? { contents: readFileSync(args.path, 'utf8'), loader: 'ts', resolveDir: dirname(args.path) } : undefined));
        b.onResolve({ filter: /src\/domain/ }, async (args) => {
          if (args.pluginData === 'again') return undefined;
          const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'again' });
          return r.path.startsWith(domain) ? { ...r, sideEffects: false } : r;
        });
      },
    },
  ],
});

// Declarations: tsc over mobile/src (and the domain modules it reaches) into lib/types.
const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

// The package is ESM ("type": "module"): under moduleResolution node16/nodenext a relative import
// in a declaration needs its file's extension, so './x' becomes './x.js' or './x/index.js'.
const types = join(lib, 'types');
const walk = (dir) => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
for (const file of walk(types).filter((f) => f.endsWith('.d.ts'))) {
  const text = readFileSync(file, 'utf8').replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*)(['"])/g, (all, head, spec, tail) => {
    if (/\.js$/.test(spec)) return all;
    const base = resolve(dirname(file), spec);
    if (existsSync(`${base}.d.ts`)) return `${head}${spec}.js${tail}`;
    if (existsSync(join(base, 'index.d.ts'))) return `${head}${spec}/index.js${tail}`;
    throw new Error(`${relative(lib, file)}: cannot resolve ${spec}`);
  });
  writeFileSync(file, text);
}
// Only the declarations the entry points reach stay (a domain module's declarations that the
// client's never name, e.g. zod-typed helpers, would otherwise ask the app for zod's types).
const reached = new Set();
const visit = (file) => {
  if (reached.has(file)) return;
  reached.add(file);
  for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]*)\.js['"]/g)) visit(resolve(dirname(file), `${m[1]}.d.ts`));
};
visit(join(types, 'mobile/src/index.d.ts'));
visit(join(types, 'mobile/src/react/index.d.ts'));
for (const file of walk(types)) if (!reached.has(file)) rmSync(file);
for (const entry of ['index', 'react']) {
  writeFileSync(join(lib, `${entry}.d.ts`), `export * from './types/mobile/src/${entry === 'index' ? 'index' : 'react/index'}.js';\n`);
}
