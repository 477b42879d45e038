import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const MOBILE = join(REPO, 'mobile');

export interface PackedMobile {
  /** The tarball `npm pack` wrote. */
  readonly tarball: string;
  /** The files it holds, as npm lists them (relative to the package). */
  readonly files: readonly string[];
  /** A consumer project: its node_modules holds the unpacked package and its dependencies only. */
  readonly consumer: string;
  /** Where the package is unpacked: `<consumer>/node_modules/@note-sync/mobile`. */
  readonly packageDir: string;
}

let packed: Promise<PackedMobile> | undefined;

/**
 * `npm pack` in mobile/ (its prepack builds lib/), once per test run, and the tarball unpacked
 * into a fresh consumer project, as an app's `npm install <tarball>` would lay it out. The
 * package's dependencies are linked from the repository's node_modules; nothing else is there,
 * so an import of anything undeclared fails.
 */
export function packMobile(): Promise<PackedMobile> {
  return (packed ??= pack());
}

async function pack(): Promise<PackedMobile> {
  const out = mkdtempSync(join(tmpdir(), 'note-sync-mobile-pack-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', out], { cwd: MOBILE, maxBuffer: 16 * 1024 * 1024 });
  // npm prints the prepack script's output before the JSON.
  const info = JSON.parse(stdout.slice(stdout.indexOf('[\n'))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = join(out, info[0]!.filename);
  const consumer = join(out, 'consumer');
  const packageDir = join(consumer, 'node_modules', '@note-sync', 'mobile');
  mkdirSync(packageDir, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', packageDir, '--strip-components=1']);
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
  // Its dependencies, and those of its peers (with their @types) that this repository has, as an app has its peers.
  const peers = Object.keys(manifest.peerDependencies ?? {}).flatMap((p) => [p, `@types/${p.replace('@', '').replace('/', '__')}`]);
  for (const dep of [...Object.keys(manifest.dependencies ?? {}), ...peers]) {
    const source = join(REPO, 'node_modules', dep);
    if (!existsSync(source)) {
      if (manifest.dependencies?.[dep]) throw new Error(`dependency ${dep} is not installed in the repository`);
      continue;
    }
    const target = join(consumer, 'node_modules', dep);
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(source, target, 'dir');
  }
  return { tarball, files: info[0]!.files.map((f) => f.path), consumer, packageDir };
}
