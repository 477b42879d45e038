import { execFile } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A throwaway PostgreSQL cluster of the test's own: initdb into a temporary folder, started on a
 * free port of its own, stopped (immediate mode: a crash) and started again at will, removed at
 * the end. Never the machine's shared server. Needs PostgreSQL's server binaries
 * (`PG_BIN`, default Debian's /usr/lib/postgresql/15/bin); as root they run as the `postgres` user,
 * since PostgreSQL refuses to run as root.
 */

const run = promisify(execFile);
const PG_BIN = process.env['PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Why a throwaway cluster cannot be made here, or null when it can. */
export function clusterUnavailable(): string | null {
  if (!existsSync(join(PG_BIN, 'initdb')) || !existsSync(join(PG_BIN, 'pg_ctl'))) return `no PostgreSQL server binaries in ${PG_BIN} (set PG_BIN, or apt-get install postgresql)`;
  return null;
}

async function pg(binary: string, args: string[]): Promise<string> {
  const file = join(PG_BIN, binary);
  const { stdout } = asRoot ? await run('runuser', ['-u', 'postgres', '--', file, ...args]) : await run(file, args);
  return stdout;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export class PgCluster {
  private running = false;

  private constructor(
    readonly dir: string,
    readonly port: number,
    /** Server settings of its own (-c name=value), on top of the common ones. */
    private readonly settings: readonly string[] = [],
  ) {}

  /**
   * A primary that hot standbys can stream from: WAL for replication, senders, and replication
   * connections from 127.0.0.1 trusted (initdb's pg_hba has such a line; written out so the test
   * does not lean on a default).
   */
  static async createPrimary(): Promise<PgCluster> {
    const plain = await PgCluster.create();
    appendFileSync(join(plain.dir, 'data', 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n');
    return new PgCluster(plain.dir, plain.port, ['wal_level=replica', 'max_wal_senders=8', 'wal_keep_size=64MB']);
  }

  /**
   * A hot standby of a running `primary`: pg_basebackup -R (a copy of its data that streams from
   * it, standby.signal written), on a port of its own, hot_standby on (read-only queries served).
   */
  static async standbyOf(primary: PgCluster): Promise<PgCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'sync-pg-standby-'));
    if (asRoot) chownSync(dir, ...postgresIds());
    await pg('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', join(dir, 'data'), '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    return new PgCluster(dir, await freePort(), ['hot_standby=on', 'max_wal_senders=8']);
  }

  /** initdb a new cluster into a temporary folder (not started). */
  static async create(): Promise<PgCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'sync-pg-'));
    if (asRoot) chownSync(dir, ...postgresIds());
    // --no-sync: the files are thrown away; crash safety of a stop comes from the WAL, not fsync.
    await pg('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
    return new PgCluster(dir, await freePort());
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    // fsync off: the machine does not crash under the test, only PostgreSQL does (immediate
    // stop), and the WAL already in the OS's page cache is replayed on start.
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200${this.settings.map((c) => ` -c ${c}`).join('')}`;
    await pg('pg_ctl', ['-D', join(this.dir, 'data'), '-o', options, '-l', join(this.dir, 'log'), '-w', '-t', '60', 'start']);
    this.running = true;
  }

  /** Stops the cluster; `immediate` is a crash (no checkpoint, every connection cut). */
  async stop(mode: 'immediate' | 'fast' = 'fast'): Promise<void> {
    await pg('pg_ctl', ['-D', join(this.dir, 'data'), '-m', mode, '-w', '-t', '60', 'stop']);
    this.running = false;
  }

  async destroy(): Promise<void> {
    if (this.running) await this.stop('immediate').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function postgresIds(): [number, number] {
  // `id -u postgres` without a shell: read /etc/passwd.
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('no postgres user on this machine');
  const [, , uid, gid] = line.split(':');
  return [Number(uid), Number(gid)];
}
