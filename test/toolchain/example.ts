/** Where the example app lives, and why a toolchain test cannot run without its install. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const exampleDir = join(repoRoot, 'mobile/example');

/** null when mobile/example's dependencies are installed; else why not and what to run. */
export function exampleNotInstalled(): string | null {
  if (existsSync(join(exampleDir, 'node_modules/expo/package.json'))) return null;
  return 'mobile/example/node_modules is absent (a plain root `npm install` does not install the example); run `npm ci --prefix mobile/example` (CI does, in .ci/run)';
}

/** Skips the calling test or hook with the reason printed, so a skip never passes silently. */
export function skipBecause(ctx: Mocha.Context, reason: string): never {
  console.log(`      skipped: ${reason}`);
  ctx.skip();
}
