import { expect } from 'chai';
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { open as openPlain } from '@op-engineering/op-sqlite';
import { build } from 'esbuild';
import { KeychainKeyStore } from '../../mobile/src/adapters/keychain-key-store';
import { OpSqliteDriver, openEncryptedOpSqlite, type OpSqliteDatabase } from '../../mobile/src/adapters/op-sqlite-driver';
import { DATABASE_KEY_NAME, MissingDatabaseKeyError, pendingDatabaseKeyName, rotateDatabaseKey, WrongDatabaseKeyError } from '../../mobile/src/database-key';
import { LocalDatabase } from '../../mobile/src/local-database';
import { migrateLocalDatabase } from '../../mobile/src/local-schema';
import type { KeyStore, SqlDriver } from '../../mobile/src/ports';
import { FakeKeychain } from '../fakes/fake-keychain';
import { FileKeyStore } from '../fakes/file-key-store';
import { ManualTimers } from '../fakes/manual-timers';
import { MemoryKeyStore } from '../fakes/memory-key-store';
import { openSqlCipher, openSqlCipherDriver } from '../support/sqlcipher';
import { runSqlDriverContract } from './sql-driver.contract';

/**
 * The phone's encrypted database on real SQLCipher files, in Node: the shipped `OpSqliteDriver`
 * and `openEncryptedOpSqlite` over OP-SQLite's API backed by SQLCipher
 * (better-sqlite3-multiple-ciphers in SQLCipher mode, test/support/sqlcipher.ts), where
 * OP-SQLite's own Node build ignores `encryptionKey`.
 */

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'sqlcipher-'));
  dirs.push(dir);
  return dir;
};
const newKey = () => randomBytes(32).toString('hex');

// The contract with a raw 256-bit key (SQLCipher's x'…' form skips the passphrase's 256,000
// PBKDF2 rounds, a quarter of a second an open here): the driver is under test, not the KDF. The
// tests below use the key as the app does, a passphrase.
runSqlDriverContract('OpSqliteDriver over SQLCipher (a keyed file)', async () => ({ driver: openSqlCipherDriver(join(tempDir(), 'contract.db'), `x'${newKey()}'`) }));

const NAME = 'notes.db';

/** What an app does: open through the key lifecycle, as OP-SQLite's SQLCipher build would. */
const openNotes = (dir: string, keyStore: KeyStore) => openEncryptedOpSqlite(openSqlCipher, { name: NAME, location: dir, keyStore, databaseExists: async () => existsSync(join(dir, NAME)) });

/** The client's schema on `driver`, and one note written through the app's data API. */
async function captureNote(driver: SqlDriver, text: string): Promise<string> {
  await migrateLocalDatabase(driver);
  const local = new LocalDatabase(driver, new ManualTimers(), () => `note-${randomBytes(4).toString('hex')}`);
  const row = await local.create('captures', { type: 'text', raw_content: text });
  return row['id'] as string;
}

const notes = async (driver: SqlDriver) => (await driver.execute('SELECT raw_content FROM captures ORDER BY raw_content')).map((r) => r['raw_content']);

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e,
  );

/** Every file of the database (the main file, and its WAL and shared memory while they exist), as bytes. */
const filesOf = (dir: string) => readdirSync(dir).map((f) => ({ file: f, bytes: readFileSync(join(dir, f)) }));
const digest = (dir: string) => createHash('sha256').update(readFileSync(join(dir, NAME))).digest('hex');

describe('the local database under SQLCipher, on disk', () => {
  after(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('is ciphertext: no file of it starts with the SQLite header or holds the note, while open (WAL) and after close; the same note in a plain database shows both', async () => {
    const text = `distinctive note ${randomBytes(6).toString('hex')}`;
    const dir = tempDir();
    const keyStore = new MemoryKeyStore();
    const db = await openNotes(dir, keyStore);
    await captureNote(db, text);
    const whileOpen = filesOf(dir);
    expect(whileOpen.map((f) => f.file)).to.include.members([NAME, `${NAME}-wal`]);
    await db.close();
    for (const { file, bytes } of [...whileOpen, ...filesOf(dir)]) {
      expect(bytes.subarray(0, 16).toString('latin1'), file).not.to.equal('SQLite format 3\0');
      expect(bytes.includes(text), `${file} holds the note in clear`).to.equal(false);
      expect(bytes.includes(Buffer.from(text, 'utf16le')), `${file} holds the note in UTF-16`).to.equal(false);
    }
    // The checks above can fail: the plain (unencrypted) database shows the header and the text.
    const plainDir = tempDir();
    const plain = new OpSqliteDriver(openPlain({ name: NAME, location: plainDir }) as unknown as OpSqliteDatabase);
    await captureNote(plain, text);
    await plain.close();
    const bytes = readFileSync(join(plainDir, NAME));
    expect(bytes.subarray(0, 16).toString('latin1')).to.equal('SQLite format 3\0');
    expect(bytes.includes(text)).to.equal(true);

    const again = await openNotes(dir, keyStore);
    try {
      expect(await notes(again)).to.deep.equal([text]);
    } finally {
      await again.close();
    }
  });

  it('refuses a wrong key with WrongDatabaseKeyError, not an empty database, and leaves the file as it was', async () => {
    const dir = tempDir();
    const keyStore = new MemoryKeyStore();
    const db = await openNotes(dir, keyStore);
    await captureNote(db, 'kept behind its key');
    await db.close();
    const before = digest(dir);
    const rightKey = (await keyStore.get(DATABASE_KEY_NAME))!;

    // Tried: another random key in the key store (a key replaced, or a file from another install).
    await keyStore.set(DATABASE_KEY_NAME, newKey());
    const error = await rejection(openNotes(dir, keyStore));
    expect(error).to.be.instanceOf(WrongDatabaseKeyError);
    expect((error as Error).message).to.match(/cannot be read with the key kept under "note-sync\.database-key" \(.*not a database\)/);
    expect(digest(dir)).to.equal(before);

    // Tried: no key at all for the existing file.
    const missing = await rejection(openNotes(dir, new MemoryKeyStore()));
    expect(missing).to.be.instanceOf(MissingDatabaseKeyError);
    expect(digest(dir)).to.equal(before);

    await keyStore.set(DATABASE_KEY_NAME, rightKey);
    const again = await openNotes(dir, keyStore);
    try {
      expect(await notes(again)).to.deep.equal(['kept behind its key']);
    } finally {
      await again.close();
    }
  });

  it('refuses, as a wrong key, a plain database found where the encrypted one should be', async () => {
    const dir = tempDir();
    const plain = new OpSqliteDriver(openPlain({ name: NAME, location: dir }) as unknown as OpSqliteDatabase);
    await captureNote(plain, 'plain');
    await plain.close();
    const keyStore = new MemoryKeyStore();
    await keyStore.set(DATABASE_KEY_NAME, newKey());
    expect(await rejection(openNotes(dir, keyStore))).to.be.instanceOf(WrongDatabaseKeyError);
  });

  it('rotates the key with the data intact: the new key opens it, the old one no longer does, and WAL is back on', async () => {
    const dir = tempDir();
    const keyStore = new MemoryKeyStore();
    const db = await openNotes(dir, keyStore);
    await captureNote(db, 'before the rotation');
    const oldKey = (await keyStore.get(DATABASE_KEY_NAME))!;
    await rotateDatabaseKey(db, { keyStore });
    const newKeyValue = (await keyStore.get(DATABASE_KEY_NAME))!;
    expect(newKeyValue).to.match(/^[0-9a-f]{64}$/).and.not.equal(oldKey);
    expect(await keyStore.get(pendingDatabaseKeyName(DATABASE_KEY_NAME)), 'no rotation left pending').to.equal(newKeyValue);
    expect(await db.execute('SELECT journal_mode FROM pragma_journal_mode')).to.deep.equal([{ journal_mode: 'wal' }]);
    // The open connection goes on under the new key.
    await new LocalDatabase(db, new ManualTimers(), () => 'note-after').create('captures', { type: 'text', raw_content: 'after the rotation' });
    await db.close();

    const withOld = openSqlCipherDriver(join(dir, NAME), oldKey);
    const refused = await rejection(withOld.execute('SELECT count(*) AS n FROM sqlite_master'));
    await withOld.close();
    expect((refused as Error).message).to.match(/not a database/);

    const again = await openNotes(dir, keyStore);
    try {
      expect(await notes(again)).to.deep.equal(['after the rotation', 'before the rotation']);
      expect(await again.execute('SELECT integrity_check FROM pragma_integrity_check')).to.deep.equal([{ integrity_check: 'ok' }]);
    } finally {
      await again.close();
    }
  });

  it('two first runs at once create one key and one database (two key store objects over one keychain)', async () => {
    const dir = tempDir();
    const keychain = new FakeKeychain();
    const [a, b] = await Promise.all([openNotes(dir, new KeychainKeyStore(keychain)), openNotes(dir, new KeychainKeyStore(keychain))]);
    try {
      expect(keychain.writes.map((w) => w.service)).to.deep.equal([DATABASE_KEY_NAME]);
      await captureNote(a, 'written by the first');
    } finally {
      await a.close();
      await b.close();
    }
    const again = await openNotes(dir, new KeychainKeyStore(keychain));
    try {
      expect(await notes(again)).to.deep.equal(['written by the first']);
    } finally {
      await again.close();
    }
  });

  describe('a rotation killed for real (SIGKILL) part-way', () => {
    let script: string;
    before(async function () {
      this.timeout(60_000);
      const out = resolve('node_modules/.cache/note-sync');
      mkdirSync(out, { recursive: true });
      script = join(out, `rotate-key-child-${process.pid}.mjs`);
      // Bundled to plain JavaScript: node starts it far faster than tsx. The native module stays in node_modules.
      await build({ entryPoints: [resolve('test/support/kill/rotate-key-child.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: script, external: ['better-sqlite3-multiple-ciphers'], logLevel: 'silent' });
    });
    after(() => rmSync(script, { force: true }));

    /** A database with two notes and its key in a key-store file, then a child that rotates and dies at `crashAt`. */
    async function killedRotation(crashAt: 'after-pending' | 'after-rekey') {
      const dir = tempDir();
      const keysFile = join(dir, 'keys.json');
      const setup = await openNotes(dir, new FileKeyStore(keysFile));
      await captureNote(setup, 'one');
      await captureNote(setup, 'two');
      await setup.close();
      const oldKey = (await new FileKeyStore(keysFile).get(DATABASE_KEY_NAME))!;
      const child = fork(script, [], {
        env: { PATH: process.env['PATH'] ?? '', ROTATE_CRASH_AT: crashAt, ROTATE_KEYS_FILE: keysFile, ROTATE_DB_DIR: dir, ROTATE_DB_NAME: NAME },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        execArgv: [],
      });
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
      expect(exit, output).to.deep.equal({ code: null, signal: 'SIGKILL' });
      const keys = new FileKeyStore(keysFile);
      const pendingKey = (await keys.get(pendingDatabaseKeyName(DATABASE_KEY_NAME)))!;
      expect(pendingKey).to.match(/^[0-9a-f]{64}$/).and.not.equal(oldKey);
      return { dir, keysFile, oldKey, pendingKey };
    }

    /** The file opens under `key` alone (read straight with SQLCipher, without the lifecycle). */
    async function opensWith(dir: string, key: string): Promise<boolean> {
      const db = openSqlCipherDriver(join(dir, NAME), key);
      try {
        await db.execute('SELECT count(*) AS n FROM sqlite_master');
        return true;
      } catch {
        return false;
      } finally {
        await db.close();
      }
    }

    it('after the new key is stored as pending, before the rekey: the next open uses the old key, notes intact, and forgets the pending key', async function () {
      this.timeout(20_000);
      const { dir, keysFile, oldKey, pendingKey } = await killedRotation('after-pending');
      expect([await opensWith(dir, oldKey), await opensWith(dir, pendingKey)]).to.deep.equal([true, false]);
      const keys = new FileKeyStore(keysFile);
      const db = await openNotes(dir, keys);
      try {
        expect(await notes(db)).to.deep.equal(['one', 'two']);
      } finally {
        await db.close();
      }
      expect([await keys.get(DATABASE_KEY_NAME), await keys.get(pendingDatabaseKeyName(DATABASE_KEY_NAME))]).to.deep.equal([oldKey, oldKey]);
    });

    it('after the rekey, before the new key is stored: the next open finds the database under the pending key, stores it, notes intact', async function () {
      this.timeout(20_000);
      const { dir, keysFile, oldKey, pendingKey } = await killedRotation('after-rekey');
      expect(await new FileKeyStore(keysFile).get(DATABASE_KEY_NAME), 'the old key is still the stored one').to.equal(oldKey);
      expect([await opensWith(dir, oldKey), await opensWith(dir, pendingKey)]).to.deep.equal([false, true]);
      const keys = new FileKeyStore(keysFile);
      const db = await openNotes(dir, keys);
      try {
        expect(await notes(db)).to.deep.equal(['one', 'two']);
        expect(await db.execute('SELECT integrity_check FROM pragma_integrity_check')).to.deep.equal([{ integrity_check: 'ok' }]);
      } finally {
        await db.close();
      }
      expect([await keys.get(DATABASE_KEY_NAME), await keys.get(pendingDatabaseKeyName(DATABASE_KEY_NAME))]).to.deep.equal([pendingKey, pendingKey]);
    });
  });
});
