import { benchCompression } from './compression';
import { benchConcurrency } from './concurrency';
import { benchConflicts } from './conflicts';
import { benchDevices } from './devices';
import { benchExampleSize } from './example-size';
import { benchLive } from './live';
import { benchMemory } from './memory';
import { benchMobileSize } from './mobile-size';
import { benchPull } from './pull';
import { benchPush } from './push';
import { benchReplicas } from './replicas';
import { benchRetention } from './retention';
import { benchScaleOut } from './scale-out';
import { benchStats } from './stats';

/** `npm run bench`: every scenario, one JSON line per measurement. Not part of `npm test`. */
const scenarios: Record<string, () => Promise<void>> = { compression: benchCompression, push: benchPush, pull: benchPull, conflicts: benchConflicts, devices: benchDevices, concurrency: benchConcurrency, memory: benchMemory, 'scale-out': benchScaleOut, replicas: benchReplicas, retention: benchRetention, stats: benchStats, live: benchLive, 'mobile-size': benchMobileSize, 'example-size': benchExampleSize };
const only = process.argv.slice(2);
const unknown = only.filter((name) => !(name in scenarios));
if (unknown.length) throw new Error(`unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(scenarios).join(', ')}`);
// Run by name: example-size builds three React Native release bundles (minutes) and needs
// mobile/example installed; replicas makes a primary and a standby cluster of its own.
const onlyWhenNamed = new Set(['example-size', 'replicas']);
for (const [name, run] of Object.entries(scenarios)) {
  if (only.length ? !only.includes(name) : onlyWhenNamed.has(name)) continue;
  await run();
}
