import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { KeyStore } from '../../mobile/src/ports';

/**
 * A platform key store kept in a JSON file, for tests whose process is killed for real: `set`
 * resolves only once the file is on disk (written to a temporary file, fsynced, renamed over the
 * old one), so a value set survives a SIGKILL right after. Passes the KeyStore contract.
 */
export class FileKeyStore implements KeyStore {
  constructor(readonly file: string) {}

  private read(): Record<string, string> {
    return existsSync(this.file) ? (JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, string>) : {};
  }

  async get(name: string): Promise<string | null> {
    return this.read()[name] ?? null;
  }

  async set(name: string, value: string): Promise<void> {
    this.write({ ...this.read(), [name]: value });
  }

  async remove(name: string): Promise<void> {
    const { [name]: _gone, ...rest } = this.read();
    this.write(rest);
  }

  private write(entries: Record<string, string>): void {
    const temporary = `${this.file}.tmp`;
    const fd = openSync(temporary, 'w');
    try {
      writeSync(fd, JSON.stringify(entries));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.file);
  }
}
