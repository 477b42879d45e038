import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { TEST_FIELD_KEYS, TEST_SECRET } from './server';

/**
 * The server as its own process (`node --import tsx src/main/server.ts`), for tests that kill it,
 * share a database between processes, or watch its output. Rate limits are off and the test
 * secret and field keys are set unless `env` says otherwise.
 */
export interface ServerProcess {
  readonly url: string;
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export async function startServerProcess(env: Record<string, string>, timeoutMs = 120_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/server.ts'], {
    env: {
      PATH: process.env['PATH'] ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      JWT_SECRET: TEST_SECRET,
      FIELD_ENCRYPTION_KEYS: TEST_FIELD_KEYS,
      RATE_LIMIT_IP_PER_MINUTE: '0',
      RATE_LIMIT_USER_PER_MINUTE: '0',
      ...env,
    },
    stdio: 'pipe',
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`the server process did not start within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = () => {
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (m) done(m[1]!);
    };
    const onExit = (code: number | null) => fail(new Error(`the server process exited (${code}) before listening:\n${out}`));
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
    };
    const done = (u: string) => {
      cleanup();
      resolve(u);
    };
    const fail = (e: Error) => {
      cleanup();
      child.kill('SIGKILL');
      reject(e);
    };
    child.stdout.on('data', onData);
    child.on('exit', onExit);
  });
  return {
    url,
    child,
    exited,
    output: () => out,
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
