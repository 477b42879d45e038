import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import type { Request } from './device-child';

/**
 * The parent's side of a device process (device-child.ts). The child is bundled once per test
 * run into plain JavaScript (node starts it in a fraction of the time tsx needs, which matters
 * when hundreds of processes are started and killed).
 */

let bundled: Promise<string> | undefined;

export function deviceChildScript(): Promise<string> {
  bundled ??= (async () => {
    const dir = resolve('node_modules/.cache/note-sync');
    mkdirSync(dir, { recursive: true });
    const outfile = join(dir, `device-child-${process.pid}.mjs`);
    await build({
      entryPoints: [resolve('test/support/kill/device-child.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      // Native: loaded from node_modules. (OP-SQLite's Node build is bundled: its imports name no file extension, which node's ESM loader refuses.)
      external: ['better-sqlite3'],
      logLevel: 'silent',
    });
    return outfile;
  })();
  return bundled;
}

export interface DeviceSetup {
  readonly serverUrl: string;
  readonly token: string;
  readonly dir: string;
  readonly name: string;
  readonly batchSize: number;
  readonly pullLimit: number;
}

/** The process died before it answered: the step may or may not have happened. */
export class DeviceGone extends Error {}

export class DeviceProcess {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly integrity: string,
    readonly deviceId: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (m: { seq: number; ok: boolean; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.seq);
      if (!w) return;
      this.waiting.delete(m.seq);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`device: ${m.error}`));
    });
    child.once('exit', () => {
      for (const w of this.waiting.values()) w.reject(new DeviceGone('the device process died before answering'));
      this.waiting.clear();
    });
  }

  static async start(setup: DeviceSetup): Promise<DeviceProcess> {
    const script = await deviceChildScript();
    const child = fork(script, [], {
      env: {
        PATH: process.env['PATH'] ?? '',
        DEVICE_SERVER_URL: setup.serverUrl,
        DEVICE_TOKEN: setup.token,
        DEVICE_DB_DIR: setup.dir,
        DEVICE_DB_NAME: setup.name,
        DEVICE_STORAGE_FILE: join(setup.dir, `${setup.name}.storage`),
        DEVICE_BATCH_SIZE: String(setup.batchSize),
        DEVICE_PULL_LIMIT: String(setup.pullLimit),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [],
    });
    const ready = await new Promise<{ integrity: string; deviceId: string }>((resolve, reject) => {
      child.once('message', (m: { ready?: boolean; integrity: string; deviceId: string }) => (m.ready ? resolve(m) : reject(new Error('unexpected first message'))));
      child.once('exit', (code) => reject(new Error(`the device process exited (${code}) before it was ready`)));
    });
    return new DeviceProcess(child, ready.integrity, ready.deviceId);
  }

  request<T = unknown>(request: Request): Promise<T> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.reject(new DeviceGone('the device process is gone'));
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ seq, request });
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL: no handler runs, nothing is flushed or closed. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  async close(): Promise<void> {
    if (!this.alive) return;
    await this.request({ op: 'close' }).catch(() => undefined);
    await this.exited;
  }
}
