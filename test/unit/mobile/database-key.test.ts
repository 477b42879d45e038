import { expect } from 'chai';
import { openEncryptedOpSqlite } from '../../../mobile/src/adapters/op-sqlite-driver';
import { DATABASE_KEY_NAME, databaseKey, MissingDatabaseKeyError } from '../../../mobile/src/database-key';
import { MemoryKeyStore } from '../../fakes/memory-key-store';

/**
 * The encrypted database's key lifecycle. (OP-SQLite's Node build ignores `encryptionKey`, so
 * SQLCipher itself is exercised on devices only; the lifecycle is what must never go wrong.)
 */
describe('the local database key', () => {
  it('is created on the first run, from secure random bytes, and kept', async () => {
    const keyStore = new MemoryKeyStore();
    const key = await databaseKey({ keyStore, databaseExists: async () => false });
    expect(key).to.match(/^[0-9a-f]{64}$/);
    expect(await keyStore.get(DATABASE_KEY_NAME)).to.equal(key);
  });

  it('is reused on later runs', async () => {
    const keyStore = new MemoryKeyStore();
    const first = await databaseKey({ keyStore, databaseExists: async () => false });
    const later = await databaseKey({ keyStore, databaseExists: async () => true, randomBytes: () => new Uint8Array(32).fill(9) });
    expect(later).to.equal(first);
  });

  it('is an explicit error when the database exists but its key is gone, and nothing is created', async () => {
    const keyStore = new MemoryKeyStore();
    let drew = false;
    const attempt = databaseKey({ keyStore, databaseExists: async () => true, randomBytes: (n) => ((drew = true), new Uint8Array(n)) });
    const error = await attempt.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(MissingDatabaseKeyError);
    expect(String((error as Error).message)).to.match(/refusing to open it with a new key/);
    expect(drew).to.equal(false);
    expect(await keyStore.get(DATABASE_KEY_NAME)).to.equal(null);
  });

  it('differs between installs', async () => {
    const a = await databaseKey({ keyStore: new MemoryKeyStore(), databaseExists: async () => false });
    const b = await databaseKey({ keyStore: new MemoryKeyStore(), databaseExists: async () => false });
    expect(a).to.not.equal(b);
  });

  it('opens OP-SQLite with the kept key as SQLCipher\'s encryptionKey, the same key on every run', async () => {
    const keyStore = new MemoryKeyStore();
    const opened: Array<{ name: string; encryptionKey?: string }> = [];
    const fakeOpen = (o: { name: string; encryptionKey?: string }) => {
      opened.push(o);
      return {
        execute: async () => ({ rows: [] }),
        prepareStatement: () => {
          throw new Error('not used: the opener runs no statement');
        },
        close: () => undefined,
      };
    };
    await openEncryptedOpSqlite(fakeOpen, { name: 'notes.db', keyStore, databaseExists: async () => false });
    await openEncryptedOpSqlite(fakeOpen, { name: 'notes.db', keyStore, databaseExists: async () => true });
    expect(opened.map((o) => o.name)).to.deep.equal(['notes.db', 'notes.db']);
    expect(opened[0]!.encryptionKey).to.match(/^[0-9a-f]{64}$/).and.equal(opened[1]!.encryptionKey);
    expect(opened[0]!.encryptionKey).to.equal(await keyStore.get(DATABASE_KEY_NAME));
  });
});
