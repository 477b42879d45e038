// `npm run build:server`: bundles the server and its commands into plain JavaScript under dist/,
// so production runs `node dist/main/server.js` with no TypeScript tooling loaded.
//
// esbuild, not tsc: the sources import without file extensions (moduleResolution "bundler"),
// which Node's ES module loader cannot resolve in tsc's output; a bundle has no such imports.
// Packages stay external (installed by `npm ci --omit=dev`), so pino, knex and PGlite load their
// own files as they expect. Each entry is a whole bundle (no shared chunks) placed at the same
// depth as its source (src/main → dist/main), so paths a module builds from import.meta.url (the
// OpenAPI document at ../../docs/openapi.yaml) resolve to the same files as under tsx.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outIndex = process.argv.indexOf('--outdir');
const outdir = resolve(outIndex >= 0 ? process.argv[outIndex + 1] : join(root, 'dist'));

const entries = {
  'main/server': 'src/main/server.ts',
  'main/migrate': 'src/main/migrate.ts',
  'main/token': 'src/main/token.ts',
  'main/reencrypt': 'src/main/reencrypt.ts',
  // For the knex CLI where no TypeScript loader is installed: npx knex --knexfile dist/knexfile.js …
  knexfile: 'knexfile.ts',
};

rmSync(join(outdir, 'main'), { recursive: true, force: true });
rmSync(join(outdir, 'knexfile.js'), { force: true });
await build({
  absWorkingDir: root,
  entryPoints: Object.entries(entries).map(([out, src]) => ({ in: src, out })),
  outdir,
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});

// The decrypt threads load these plain ES modules by URL next to the module that starts them
// (new URL('./decrypt-worker.mjs', import.meta.url)): in the bundle that is dist/main/.
mkdirSync(join(outdir, 'main'), { recursive: true });
for (const file of ['decrypt-worker.mjs', 'gcm-open.mjs']) {
  copyFileSync(join(root, 'src/adapters/crypto', file), join(outdir, 'main', file));
}
console.log(`built the server into ${outdir}`);
