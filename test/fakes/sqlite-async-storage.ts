import { dirname, basename } from 'node:path';
import { open } from '@op-engineering/op-sqlite';
import type { AsyncStorageLike } from '../../mobile/src/adapters/async-storage-checkpoints';
import { OpSqliteDriver, type OpSqliteDatabase } from '../../mobile/src/adapters/op-sqlite-driver';

/**
 * AsyncStorage's API over a SQLite file (as the real AsyncStorage keeps its data on Android): a
 * value set survives the process being killed, for tests whose devices are killed for real.
 */
export class SqliteAsyncStorage implements AsyncStorageLike {
  private readonly db: OpSqliteDriver;
  private readonly ready: Promise<unknown>;

  constructor(file: string) {
    this.db = new OpSqliteDriver(open({ name: basename(file), location: dirname(file) }) as unknown as OpSqliteDatabase);
    this.ready = this.db.execute('CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  }

  async getItem(key: string): Promise<string | null> {
    await this.ready;
    const [row] = await this.db.execute('SELECT value FROM kv WHERE key = ?', [key]);
    return (row?.['value'] as string | undefined) ?? null;
  }

  async setItem(key: string, value: string): Promise<void> {
    await this.ready;
    await this.db.execute('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async removeItem(key: string): Promise<void> {
    await this.ready;
    await this.db.execute('DELETE FROM kv WHERE key = ?', [key]);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
