/**
 * A phone rotating its database key, killed for real mid-rotation (test/contract/sqlcipher-driver.test.ts).
 * It opens the SQLCipher database (OP-SQLite's API over SQLCipher, test/support/sqlcipher.ts)
 * through `openEncryptedOpSqlite` with its key store in a file, then runs `rotateDatabaseKey`
 * and SIGKILLs itself at the point `ROTATE_CRASH_AT` names:
 * - `after-pending`: the new key is stored as pending, the database not yet rekeyed;
 * - `after-rekey`: the database is rekeyed, the new key not yet stored under the key's name.
 */
import { openEncryptedOpSqlite } from '../../../mobile/src/adapters/op-sqlite-driver';
import { DATABASE_KEY_NAME, pendingDatabaseKeyName, rotateDatabaseKey } from '../../../mobile/src/database-key';
import type { KeyStore } from '../../../mobile/src/ports';
import { FileKeyStore } from '../../fakes/file-key-store';
import { openSqlCipher } from '../sqlcipher';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`rotate-key child: ${name} is not set`);
  return v;
};

const die = (): never => {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('SIGKILL did not end the process');
};

async function main(): Promise<void> {
  const crashAt = env('ROTATE_CRASH_AT');
  const keyStore = new FileKeyStore(env('ROTATE_KEYS_FILE'));
  const crashing: KeyStore = {
    get: (name) => keyStore.get(name),
    set: async (name, value) => {
      if (crashAt === 'after-rekey' && name === DATABASE_KEY_NAME) die();
      await keyStore.set(name, value);
      if (crashAt === 'after-pending' && name === pendingDatabaseKeyName(DATABASE_KEY_NAME)) die();
    },
  };
  const db = await openEncryptedOpSqlite(openSqlCipher, { name: env('ROTATE_DB_NAME'), location: env('ROTATE_DB_DIR'), keyStore, databaseExists: async () => true });
  await rotateDatabaseKey(db, { keyStore: crashing });
  await db.close();
  process.stdout.write('rotated without a crash\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`rotate-key child: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
