import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitWithin, portClosed, processAlive, spawnCommand, waitForOutput } from '../support/processes';

/**
 * `npm start`, as the README gives it, stops on a signal sent to the npm process itself (what a
 * container runtime or a process manager signals), not only to the server inside it. Before the
 * fix npm's `sh -c` died and the server kept serving, orphaned. The built server's command
 * (`npm run start:prod`) is checked the same way in built-server.test.ts.
 */
describe('signals sent to the documented start command', function () {
  this.timeout(400_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sync-signals-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('SIGTERM to `npm start` drains and stops the server, closes its port and logs the end', async () => {
    const s = spawnCommand('npm', ['start'], process.cwd(), { PORT: '0', PGLITE_DATA_DIR: join(dir, 'pglite'), LOG_FORMAT: 'json' });
    let serverPid = 0;
    try {
      const [, port] = await waitForOutput(s, /listening on http:\/\/127\.0\.0\.1:(\d+)/);
      serverPid = Number((await waitForOutput(s, /"pid":(\d+)/))[1]);
      expect(serverPid).to.not.equal(s.child.pid, 'the server runs in its own node process under npm');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).to.equal(200);

      s.child.kill('SIGTERM');
      const exit = await exitWithin(s, 60_000);
      expect(exit.code).to.equal(0);
      expect(s.output()).to.match(/SIGTERM: finishing in-flight requests/);
      expect(s.output()).to.match(/"msg":"shutdown complete"/);
      expect(processAlive(serverPid), 'the server process is gone').to.equal(false);
      expect(await portClosed(Number(port))).to.equal(true);
    } finally {
      s.child.kill('SIGKILL');
      if (serverPid && processAlive(serverPid)) process.kill(serverPid, 'SIGKILL');
    }
  });
});
