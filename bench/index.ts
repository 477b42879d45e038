import { benchCompression } from './compression';

/** `npm run bench`: every scenario, one JSON line per measurement. Not part of `npm test`. */
const scenarios: Record<string, () => Promise<void>> = { compression: benchCompression };
const only = process.argv.slice(2);
for (const [name, run] of Object.entries(scenarios)) {
  if (only.length && !only.includes(name)) continue;
  await run();
}
