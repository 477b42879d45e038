import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { dataOf, openChannel } from '../support/live';

/**
 * SIGTERM with live channels open, on the server as `npm start` runs it: every channel hears
 * `bye` with SHUTTING_DOWN and ends, and the process exits 0 (an open SSE stream would otherwise
 * hold the HTTP server's close forever).
 */
describe('live channels and SIGTERM (a real server process)', () => {
  it('closes every channel with bye SHUTTING_DOWN and exits 0', async function () {
    this.timeout(60_000);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/server.ts'], {
      env: { PATH: process.env['PATH'] ?? '', PORT: '0', LOG_LEVEL: 'warn', PGLITE_DATA_DIR: 'memory://' },
      stdio: 'pipe',
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const ready = await new Promise<RegExpMatchArray>((resolve, reject) => {
        const look = () => {
          const m = /listening on (http:\/\/\S+)[\s\S]*development token for user "demo-user".*\n(\S+)/.exec(out);
          if (m) resolve(m);
        };
        child.stdout.on('data', look);
        child.on('exit', () => reject(new Error(`the server exited:\n${out}`)));
        setTimeout(() => reject(new Error(`the server did not start:\n${out}`)), 50_000);
      });
      const [, url, token] = ready;
      const channels = [openChannel(url!, token!, 'phone'), openChannel(url!, token!, 'tablet')];
      await Promise.all(channels.map((c) => c.waitFor((e) => e.type === 'hello', 'hello')));
      child.kill('SIGTERM');
      for (const c of channels) {
        expect(dataOf(await c.waitFor((e) => e.type === 'bye', 'bye')).code).to.equal('SHUTTING_DOWN');
        await c.waitFor((e) => e.type === 'done', 'the end of the stream');
      }
      expect(await exited).to.equal(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
