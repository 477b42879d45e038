import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { transform } from 'esbuild';
import * as mobile from '../../mobile/src';
import { REPO } from '../support/mobile-package';

/** The code blocks of a Markdown file in these languages, with the line each starts on. */
export function codeBlocks(markdown: string, languages = ['ts', 'tsx', 'js', 'jsx']): Array<{ line: number; lang: string; code: string }> {
  const blocks: Array<{ line: number; lang: string; code: string }> = [];
  const re = /^```(\w+)\n([\s\S]*?)^```$/gm;
  for (const m of markdown.matchAll(re)) {
    if (languages.includes(m[1]!)) blocks.push({ line: markdown.slice(0, m.index).split('\n').length, lang: m[1]!, code: m[2]! });
  }
  return blocks;
}

/** Why a snippet would not run as an app's module on Hermes, or null. */
export async function snippetProblem(code: string, lang: string): Promise<string | null> {
  try {
    // CommonJS output refuses a top-level await: Metro's output would hold one inside a plain
    // function, which Hermes rejects at startup ("Property 'await' doesn't exist").
    await transform(code, { loader: lang.startsWith('ts') ? (lang as 'ts' | 'tsx') : (lang as 'js' | 'jsx'), format: 'cjs', logLevel: 'silent' });
    return null;
  } catch (e) {
    return (e as { errors?: Array<{ text: string }> }).errors?.map((x) => x.text).join('; ') ?? String(e);
  }
}

describe('docs/mobile.md, as an app developer copies it', () => {
  const blocks = codeBlocks(readFileSync(join(REPO, 'docs/mobile.md'), 'utf8'));

  it('has code to check', () => {
    expect(blocks.length).to.be.greaterThan(5);
  });

  it('has no top-level await and no syntax error in any snippet (checked: the old "export const syncClient = await …" fails)', async () => {
    for (const b of blocks) expect(await snippetProblem(b.code, b.lang), `docs/mobile.md:${b.line}`).to.equal(null);
    expect(await snippetProblem("export const c = await createSyncClient({});", 'ts')).to.match(/[Tt]op-level await/);
  });

  it('imports the client as @note-sync/mobile, only names the package exports, and never a path into this repository', () => {
    for (const b of blocks) {
      for (const m of b.code.matchAll(/import\s+(?:type\s+)?([^'";]*?)\s+from\s+['"]([^'"]+)['"]/g)) {
        const [, names, from] = m;
        expect(from, `docs/mobile.md:${b.line}`).not.to.match(/^\.|\/src\b/);
        if (from !== '@note-sync/mobile') continue;
        for (const raw of names!.replace(/[{}]/g, '').split(',').map((n) => n.trim()).filter(Boolean)) {
          if (raw.startsWith('type ')) continue; // a type: checked by the package's consumer type-check
          expect(mobile, `docs/mobile.md:${b.line} imports ${raw}`).to.have.property(raw.split(/\s+as\s+/)[0]!);
        }
      }
    }
  });
});
