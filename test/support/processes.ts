import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { connect } from 'node:net';

/** A command run as a user runs it (npm, node), its output collected, for tests that send it signals. */
export interface Spawned {
  readonly child: ChildProcessWithoutNullStreams;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `command args` in `cwd` with only PATH, HOME and `env`: no NODE_OPTIONS (so no loader
 * comes from the test's own process), no npm_* variables of the running test.
 */
export function spawnCommand(command: string, args: readonly string[], cwd: string, env: Record<string, string>): Spawned {
  const child = spawn(command, args, {
    cwd,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', npm_config_update_notifier: 'false', ...env },
    stdio: 'pipe',
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

/** Waits until the output matches (polling the collected text), failing early if the process ends. */
export async function waitForOutput(s: Spawned, pattern: RegExp, ms = 180_000): Promise<RegExpMatchArray> {
  const until = Date.now() + ms;
  for (;;) {
    const m = pattern.exec(s.output());
    if (m) return m;
    if (Date.now() > until || s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`no ${pattern} in output:\n${s.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves with the exit, or rejects after `ms` (the process is then still running). */
export function exitWithin(s: Spawned, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return Promise.race([s.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${s.output()}`)), ms).unref())]);
}

/** True when process `pid` exists (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when nothing accepts connections on 127.0.0.1:port. */
export function portClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** Every line of `text` that is not a JSON object. */
export function nonJsonLines(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      try {
        return typeof JSON.parse(line) !== 'object';
      } catch {
        return true;
      }
    });
}
