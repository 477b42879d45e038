// The dashboard's build (Vite) into dist/admin. `--if-stale` (npm start's prestart, the browser
// test) builds only when dist/admin is missing or older than its sources, so a start stays quick;
// without Vite (a production install without devDependencies) it says so and leaves the server to
// answer /admin with a page naming `npm run build:admin`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sources = join(root, 'src/adapters/http/admin-ui');
const built = join(root, 'dist/admin/index.html');

function newest(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

const ifStale = process.argv.includes('--if-stale');
if (ifStale && existsSync(built)) {
  // The lockfile too: a new uPlot or Preact is a new build.
  const inputs = Math.max(newest(sources), newest(join(root, 'package-lock.json')));
  if (statSync(built).mtimeMs >= inputs) process.exit(0);
}

let vite;
try {
  vite = join(dirname(createRequire(join(root, 'package.json')).resolve('vite/package.json')), 'bin/vite.js');
} catch {
  const message = 'Vite is not installed (devDependencies omitted?): the dashboard at /admin is not built; run `npm install` then `npm run build:admin`.';
  if (ifStale) {
    console.warn(message);
    process.exit(0);
  }
  console.error(message);
  process.exit(1);
}
if (ifStale) console.log('building the dashboard (dist/admin)…');
const run = spawnSync(process.execPath, [vite, 'build', '--config', join(sources, 'vite.config.ts')], { cwd: root, stdio: 'inherit' });
process.exit(run.status ?? 1);
