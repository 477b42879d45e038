import { expect } from 'chai';
import { openEncryptedOpSqlite } from '../../../mobile/src/adapters/op-sqlite-driver';
import { KeychainKeyStore } from '../../../mobile/src/adapters/keychain-key-store';
import { DATABASE_KEY_NAME, databaseKey, MissingDatabaseKeyError, pendingDatabaseKeyName, rotateDatabaseKey } from '../../../mobile/src/database-key';
import type { KeyStore, SqlDriver } from '../../../mobile/src/ports';
import { FakeKeychain } from '../../fakes/fake-keychain';
import { MemoryKeyStore } from '../../fakes/memory-key-store';

/**
 * The encrypted database's key lifecycle, its logic alone. On real SQLCipher files (opening,
 * wrong keys, rekey, a process killed mid-rotation): test/contract/sqlcipher-driver.test.ts.
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

  describe('two first runs at once', () => {
    /** A MemoryKeyStore counting writes, whose reads and writes take a turn of the event loop each (as a keychain's do). */
    const slowStore = () => {
      const store = new MemoryKeyStore();
      let writes = 0;
      const turn = () => new Promise((r) => setImmediate(r));
      const keyStore: KeyStore = {
        get: async (name) => (await turn(), store.get(name)),
        set: async (name, value) => (await turn(), writes++, store.set(name, value)),
      };
      return { keyStore, writes: () => writes };
    };

    it('create one key, written once, that both get (before the fix each created its own, and the last write won)', async () => {
      const { keyStore, writes } = slowStore();
      const keys = await Promise.all([1, 2, 3].map(() => databaseKey({ keyStore, databaseExists: async () => false })));
      expect(new Set(keys).size).to.equal(1);
      expect(writes()).to.equal(1);
      expect(await keyStore.get(DATABASE_KEY_NAME)).to.equal(keys[0]);
    });

    it('create one key also through two key store objects over one keychain', async () => {
      const keychain = new FakeKeychain();
      const [a, b] = await Promise.all([
        databaseKey({ keyStore: new KeychainKeyStore(keychain), databaseExists: async () => false }),
        databaseKey({ keyStore: new KeychainKeyStore(keychain), databaseExists: async () => false }),
      ]);
      expect(a).to.equal(b);
      expect(keychain.writes).to.have.length(1);
    });

    it('each get their own key store\'s key: a first run with another store under the same name is not handed this one\'s', async () => {
      const one = new MemoryKeyStore();
      const other = new MemoryKeyStore();
      const [a, b] = await Promise.all([databaseKey({ keyStore: one, databaseExists: async () => false }), databaseKey({ keyStore: other, databaseExists: async () => false })]);
      expect(a).to.not.equal(b);
      expect([await one.get(DATABASE_KEY_NAME), await other.get(DATABASE_KEY_NAME)]).to.deep.equal([a, b]);
    });

    it('in another process: the one whose key was overwritten re-reads after writing and adopts the key kept', async () => {
      const store = new MemoryKeyStore();
      const theirs = 'f'.repeat(64);
      // The other process writes its key between this one's write and its re-read.
      const racing: KeyStore = {
        get: (name) => store.get(name),
        set: async (name, value) => {
          await store.set(name, value);
          await store.set(name, theirs);
        },
      };
      expect(await databaseKey({ keyStore: racing, databaseExists: async () => false })).to.equal(theirs);
    });

    it('are kept apart per key name: a key under another name is not waited on nor shared', async () => {
      const keyStore = new MemoryKeyStore();
      const [a, b] = await Promise.all([
        databaseKey({ keyStore, databaseExists: async () => false, keyName: 'db-a' }),
        databaseKey({ keyStore, databaseExists: async () => false, keyName: 'db-b' }),
      ]);
      expect(a).to.not.equal(b);
      expect([await keyStore.get('db-a'), await keyStore.get('db-b')]).to.deep.equal([a, b]);
    });
  });

  describe('rotation (the rekey itself on SQLCipher files: test/contract/sqlcipher-driver.test.ts)', () => {
    /** An SqlDriver that records statements and answers the journal mode; enough for the order of steps. */
    const recordingDriver = (journalMode: string, steps: string[]): SqlDriver => ({
      execute: async (sql) => {
        steps.push(sql.replace(/'[0-9a-f]{64}'/, "'<key>'"));
        return sql.startsWith('SELECT journal_mode') ? [{ journal_mode: journalMode }] : [];
      },
      executeMany: async () => undefined,
      transaction: async () => {
        throw new Error('not used');
      },
      close: async () => undefined,
    });

    it('stores the new key as pending before the rekey and as the key after it, leaving WAL for the rekey and back', async () => {
      const store = new MemoryKeyStore();
      await store.set(DATABASE_KEY_NAME, 'a'.repeat(64));
      const steps: string[] = [];
      const keyStore: KeyStore = {
        get: (name) => store.get(name),
        set: async (name, value) => (steps.push(`store ${name}`), store.set(name, value)),
      };
      await rotateDatabaseKey(recordingDriver('wal', steps), { keyStore });
      expect(steps).to.deep.equal([
        `store ${pendingDatabaseKeyName(DATABASE_KEY_NAME)}`,
        'SELECT journal_mode FROM pragma_journal_mode',
        'PRAGMA journal_mode = DELETE',
        "PRAGMA rekey = '<key>'",
        'PRAGMA journal_mode = WAL',
        `store ${DATABASE_KEY_NAME}`,
      ]);
      const key = await store.get(DATABASE_KEY_NAME);
      expect(key).to.match(/^[0-9a-f]{64}$/).and.not.equal('a'.repeat(64));
      expect(await store.get(pendingDatabaseKeyName(DATABASE_KEY_NAME))).to.equal(key);
    });

    it('is an explicit error when there is no key to rotate, and nothing is run', async () => {
      const steps: string[] = [];
      const error = await rotateDatabaseKey(recordingDriver('delete', steps), { keyStore: new MemoryKeyStore() }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(MissingDatabaseKeyError);
      expect(steps).to.deep.equal([]);
    });
  });
});
