import { closeDatabases } from './databases';

/**
 * Root hooks. mocha runs without `exit: true`, so a handle a test leaves open (a server, a socket,
 * a timer, a child process, a worker) would keep the run alive for ever. After the databases are
 * closed, the last hook waits for what is still closing (fetch's keep-alive sockets, pools) to go,
 * then fails naming whatever is left, and arms a watchdog that ends the process if it is still
 * alive, so a leak is a red run with its culprit, never a CI job that hangs.
 */

const SETTLE_MS = 10_000;
const WATCHDOG_MS = 15_000;

interface Handle {
  constructor?: { name?: string };
  fd?: number;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  _onTimeout?: unknown;
  hasRef?: () => boolean;
  pid?: number;
  spawnfile?: string;
}

/** Handles that keep the process alive, other than stdio. */
function liveHandles(): Handle[] {
  const handles = (process as unknown as { _getActiveHandles(): Handle[] })._getActiveHandles();
  return handles.filter((h) => {
    if (typeof h.fd === 'number' && h.fd <= 2) return false;
    if (typeof h.hasRef === 'function' && !h.hasRef()) return false;
    return true;
  });
}

function describeHandle(h: Handle): string {
  const kind = h.constructor?.name ?? typeof h;
  if (typeof h._onTimeout === 'function') return `${kind}: ${String(h._onTimeout).slice(0, 200).replace(/\s+/g, ' ')}`;
  if (h.remotePort !== undefined) return `${kind}: ${h.remoteAddress}:${h.remotePort} (local port ${h.localPort})`;
  if (h.pid !== undefined) return `${kind}: pid ${h.pid} ${h.spawnfile ?? ''}`;
  const address = (h as { address?: () => unknown }).address;
  if (typeof address === 'function') {
    try {
      return `${kind}: listening on ${JSON.stringify(address.call(h))}`;
    } catch {
      // not a listener
    }
  }
  return kind;
}

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000 + SETTLE_MS);
    await closeDatabases();
    const deadline = Date.now() + SETTLE_MS;
    let left = liveHandles();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      left = liveHandles();
    }
    const resources = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap');
    // Unref'd: it fires only if something keeps the process alive after mocha is done.
    setTimeout(() => {
      console.error(`The test run was still alive ${WATCHDOG_MS / 1000} s after its last hook; open: ${process.getActiveResourcesInfo().join(', ')}`);
      for (const h of liveHandles()) console.error(`  ${describeHandle(h)}`);
      process.exit(process.exitCode || 1);
    }, WATCHDOG_MS).unref();
    if (left.length > 0) throw new Error(`tests left ${left.length} handle(s) open (${resources.join(', ')}):\n  ${left.map(describeHandle).join('\n  ')}`);
  },
};
