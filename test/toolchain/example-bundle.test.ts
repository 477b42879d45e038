import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exampleDir, exampleNotInstalled, skipBecause } from './example';

/**
 * React Native's own toolchain over the example app (issue 18, items 3, 4 and 10): the package is
 * packed, the example installs the tarball and type-checks against its .d.ts, Metro bundles it for android and ios in release mode
 * and hermesc (hermes-compiler, as react-native depends on it) compiles the android bundle. The
 * script is the one CI and developers run: mobile/example/scripts/bundle.mjs.
 */
describe('toolchain: the example app bundled by Metro and compiled by hermesc', function () {
  // Two cold Metro builds of a whole React Native app; measured in mobile/example/README.md.
  this.timeout(15 * 60_000);
  const script = join(exampleDir, 'scripts/bundle.mjs');
  const sha1 = (f: string) => createHash('sha1').update(readFileSync(f)).digest('hex');

  before(function () {
    const missing = exampleNotInstalled();
    if (missing) skipBecause(this, missing);
  });

  const bundle = (args: string[]) => {
    const r = spawnSync(process.execPath, [script, ...args], { cwd: exampleDir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, summary: last.startsWith('{') ? JSON.parse(last) : null };
  };

  it('packs the package, installs the tarball, bundles android and ios in release mode and compiles android to Hermes bytecode', function () {
    const lock = sha1(join(exampleDir, 'package-lock.json'));
    const r = bundle([]);
    expect(r.status, `${r.stdout}\n${r.stderr}`).to.equal(0);
    const s = r.summary;
    expect(s.ok).to.equal(true);
    expect(s.typecheck.seconds, 'tsc checked the example against the packed .d.ts').to.be.a('number');
    expect(s.package.tarball).to.match(/note-sync-mobile-\d+\.\d+\.\d+\.tgz$/);
    expect(sha1(join(exampleDir, 'package-lock.json')), 'the lockfile changed').to.equal(lock);

    for (const platform of ['android', 'ios']) {
      const file = s[platform].bundle.file as string;
      expect(existsSync(file), file).to.equal(true);
      expect(s[platform].bundle.bytes).to.be.greaterThan(100_000);
      // The app's code and the package came from the installed tarball, never from ../src.
      const sources = (JSON.parse(readFileSync(`${file}.map`, 'utf8')) as { sources: string[] }).sources;
      expect(sources.some((p) => p.includes('node_modules/@note-sync/mobile/'))).to.equal(true);
      // Metro names sources from the example's folder: '/src/CaptureList.tsx', '/node_modules/…'.
      expect(sources).to.include('/src/CaptureList.tsx');
      expect(sources.filter((p) => p.includes('../') || /(^|\/)(mobile\/src|src\/domain)\//.test(p))).to.deep.equal([]);
    }
    // Hermes bytecode: the file starts with the HBC magic number (0x1F1903C103BC1FC6, little-endian).
    const hbc = readFileSync(s.android.hermes.file as string);
    expect(hbc.subarray(0, 8).toString('hex')).to.equal('c61fbc03c103191f');
    expect(s.android.hermes.undeclaredGlobals).to.not.include('await');
  });

  it('fails on a top-level await, whether Metro rejects it or lets it through to a hermesc warning', function () {
    // Scratch entries beside the app (dist/ is git-ignored), bundled without repacking.
    const dir = join(exampleDir, 'dist/scratch');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const cases = {
      // The docs' old `export const syncClient = await createSyncClient(…)`: Metro's minifier rejects it.
      'plain.ts': 'import { Text } from "react-native";\nasync function init(): Promise<number> { return 1; }\nexport const client = await init();\nconsole.log(client, Text);\n',
      // A parenthesised operand survives as a call of a function named `await`; only hermesc notices.
      'parenthesised.ts': 'import { Text } from "react-native";\nasync function init(): Promise<number> { return 1; }\nexport const client = await (Math.random() > 2 ? init() : Promise.resolve(2));\nconsole.log(client, Text);\n',
    };
    for (const [name, source] of Object.entries(cases)) writeFileSync(join(dir, name), source);

    const plain = bundle(['--no-pack', '--no-typecheck', '--platforms', 'android', '--entry', 'dist/scratch/plain.ts', '--out', join(dir, 'out-plain')]);
    expect(plain.status, plain.stdout).to.equal(1);
    expect(plain.stderr).to.match(/Metro \(android, dist\/scratch\/plain\.ts\) failed/);

    const parenthesised = bundle(['--no-pack', '--no-typecheck', '--platforms', 'android', '--entry', 'dist/scratch/parenthesised.ts', '--out', join(dir, 'out-parenthesised')]);
    expect(parenthesised.status, parenthesised.stdout).to.equal(1);
    expect(parenthesised.stdout, 'Metro must have bundled it').to.match(/android: Metro \d+ B/);
    expect(parenthesised.stderr).to.include('the variable "await" was not declared');
    rmSync(dir, { recursive: true, force: true });
  });
});
