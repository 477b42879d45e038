import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleDir, exampleNotInstalled, repoRoot, skipBecause } from './example';

/**
 * The domain runs unchanged on Hermes: a scenario (push validation of good and bad bodies, every
 * row of the conflict policy, the retry delays) is bundled, lowered with React Native's Babel
 * preset (the Hermes CLI on npm, hermes-engine-cli 0.12, predates `class`), and run under that
 * Hermes and under Node. Both must print the same bytes, and the same as the TypeScript source
 * run directly by Node. hermes-engine-cli, esbuild and the preset are the example's devDependencies.
 */
describe('toolchain: the domain on a Hermes runtime and on Node', function () {
  this.timeout(240_000);
  const scenario = join(repoRoot, 'test/toolchain/hermes/domain-scenario.ts');
  let dir: string;
  let hermes: string;
  let lowered: string;

  before(async function () {
    const missing = exampleNotInstalled();
    if (missing) skipBecause(this, missing);
    if (process.platform !== 'linux' || process.arch !== 'x64') skipBecause(this, `hermes-engine-cli ships its Linux binary for x64 only (this is ${process.platform}/${process.arch})`);
    const req = createRequire(join(exampleDir, 'package.json'));
    hermes = join(req.resolve('hermes-engine-cli/package.json'), '../linux64-bin/hermes');
    dir = mkdtempSync(join(tmpdir(), 'hermes-domain-'));
    const esbuild = req('esbuild') as typeof import('esbuild');
    const babel = req('@babel/core') as { transformSync(code: string, opts: object): { code: string } | null };
    const bundled = await esbuild.build({ entryPoints: [scenario], bundle: true, format: 'iife', platform: 'neutral', mainFields: ['module', 'main'], target: 'esnext', write: false, logLevel: 'silent' });
    const code = babel.transformSync(bundled.outputFiles[0]!.text, {
      babelrc: false,
      configFile: false,
      compact: false,
      sourceType: 'script',
      // The preset's default profile (not 'hermes-stable') lowers classes, as for a pre-Hermes-1 engine.
      presets: [[req.resolve('@react-native/babel-preset'), { enableBabelRuntime: false, disableImportExportTransform: true, dev: false }]],
      caller: { name: 'hermes-domain-test', unstable_transformProfile: 'default' },
    })!.code;
    lowered = join(dir, 'domain-scenario.js');
    writeFileSync(lowered, code);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const exec = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 });
    expect(r.error, String(r.error)).to.equal(undefined);
    expect(r.status, `${cmd} ${args.join(' ')}: ${r.stderr}`).to.equal(0);
    return r.stdout;
  };

  it('needs the lowering: this Hermes rejects class syntax', function () {
    const raw = join(dir, 'class.js');
    writeFileSync(raw, 'class A {}\nprint(typeof A);\n');
    const r = spawnSync(hermes, [raw]);
    expect(r.status).to.not.equal(0);
    expect(String(r.stderr)).to.match(/class/i);
  });

  it('prints byte-identical JSON under Hermes and under Node, equal to the source run by Node', function () {
    const onHermes = exec(hermes, [lowered]);
    const onNode = exec(process.execPath, [lowered]);
    const fromSource = exec(process.execPath, ['--import', 'tsx', scenario]);
    expect(onHermes.equals(onNode), 'Hermes and Node printed different bytes').to.equal(true);
    expect(onNode.equals(fromSource), 'the lowered bundle changed what the source prints').to.equal(true);

    // The scenario covers what it claims (so an empty or broken run cannot pass).
    const out = JSON.parse(onHermes.toString('utf8'));
    expect(Object.keys(out.push.good)).to.deep.equal(['ok']);
    expect(out.push.good.ok.recordCount).to.equal(4);
    expect(out.push.good_unicode.ok.tables[0].upserts[0].id).to.equal('é-😀');
    const codes = Object.fromEntries(Object.entries(out.push as Record<string, { err?: { code: string } }>).map(([k, v]) => [k, v.err?.code ?? 'ok']));
    expect(codes).to.deep.equal({
      good: 'ok', good_first_push: 'ok', good_unicode: 'ok',
      not_an_object: 'VALIDATION_FAILED', no_changes: 'VALIDATION_FAILED', bad_last_pulled_at: 'VALIDATION_FAILED',
      unknown_table: 'VALIDATION_FAILED', unknown_column: 'VALIDATION_FAILED', wrong_type: 'VALIDATION_FAILED',
      lone_surrogate_id: 'VALIDATION_FAILED', duplicate_id: 'VALIDATION_FAILED', too_many_records: 'PAYLOAD_TOO_LARGE',
      record_too_large: 'VALIDATION_FAILED', other_users_record: 'FORBIDDEN',
    });
    const decisions = out.decisions as Array<{ change: string; row: string; lastPulledAt: number | null; decision: { action: string; merged?: boolean; conflict?: { type: string; clientColumns: string[]; serverColumns: string[] } } }>;
    expect(decisions).to.have.length(30);
    expect(new Set(decisions.map((d) => d.decision.action))).to.deep.equal(new Set(['none', 'delete', 'create', 'restamp_delete', 'update']));
    expect(new Set(decisions.map((d) => d.decision.conflict?.type).filter(Boolean))).to.deep.equal(new Set(['update_update', 'update_delete', 'delete_update']));
    const merge = decisions.find((d) => d.change === 'upsert_changed_listed' && d.row === 'changed_by_other' && d.lastPulledAt === 1000)!.decision;
    expect(merge.conflict).to.include({ type: 'update_update' });
    expect(merge.conflict!.clientColumns).to.deep.equal(['raw_content']);
    expect(merge.conflict!.serverColumns).to.deep.equal(['state']);
    expect(out.backoff.delays.slice(2, 13).map((d: [string, number]) => d[1] / 1000)).to.deep.equal([1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 55]);
  });
});
