import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '@op-engineering/op-sqlite';
import { OpSqliteDriver, type OpSqliteDatabase } from '../../mobile/src/adapters/op-sqlite-driver';
import { runSqlDriverContract } from './sql-driver.contract';

const openDriver = (name: string, location: string) => new OpSqliteDriver(open({ name, location }) as unknown as OpSqliteDatabase);

const dirs: string[] = [];
/** A fresh directory, removed when the suite ends. */
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'op-sqlite-driver-'));
  dirs.push(dir);
  return dir;
};

runSqlDriverContract('OpSqliteDriver (in memory)', async () => ({ driver: openDriver('contract.db', ':memory:') }));
runSqlDriverContract('OpSqliteDriver (file)', async () => ({ driver: openDriver('contract.db', tempDir()) }));

describe('OpSqliteDriver on a file', () => {
  after(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a committed transaction and drops a rolled-back one across a reopen', async () => {
    const dir = tempDir();
    const first = openDriver('app.db', dir);
    await first.execute('CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)');
    await first.transaction(async (tx) => {
      await tx.execute('INSERT INTO notes VALUES (?, ?)', ['kept', 'committed']);
    });
    await first
      .transaction(async (tx) => {
        await tx.execute('INSERT INTO notes VALUES (?, ?)', ['lost', 'rolled back']);
        throw new Error('abandon');
      })
      .catch(() => undefined);
    await first.close();

    const reopened = openDriver('app.db', dir);
    try {
      expect(await reopened.execute('SELECT id, body FROM notes ORDER BY id')).to.deep.equal([{ id: 'kept', body: 'committed' }]);
    } finally {
      await reopened.close();
    }
  });
});
