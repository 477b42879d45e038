import { expect } from 'chai';
import { DATABASE_KEY_NAME, databaseKey, databaseKeyName, MissingDatabaseKeyError } from '../../../mobile/src/database-key';
import { MemoryKeyStore } from '../../fakes/memory-key-store';

/** Each user's database has its own key; the one key of an install from before accounts goes to the user whose database it opens. */
describe("a user's database key", () => {
  it('is kept under a name of its own per user, apart from the name of before and from other users', async () => {
    const keyStore = new MemoryKeyStore();
    const alice = await databaseKey({ keyStore, userId: 'alice', databaseExists: async () => false });
    const bob = await databaseKey({ keyStore, userId: 'bob', databaseExists: async () => false });
    expect(alice).to.not.equal(bob);
    expect(await keyStore.get(databaseKeyName('alice'))).to.equal(alice);
    expect(await keyStore.get(databaseKeyName('bob'))).to.equal(bob);
    expect(await keyStore.get(DATABASE_KEY_NAME)).to.equal(null);
    expect(databaseKeyName()).to.equal(DATABASE_KEY_NAME);
    // A user id cannot make its name another's (the id is percent-encoded).
    expect(databaseKeyName('a.b')).to.not.equal(databaseKeyName('a%2Eb'));
    expect(await databaseKey({ keyStore, userId: 'alice', databaseExists: async () => true })).to.equal(alice);
  });

  it("takes over the key of before when the user's database exists (the install's database, now this user's), and removes the old entry", async () => {
    const keyStore = new MemoryKeyStore();
    const before = await databaseKey({ keyStore, databaseExists: async () => false });
    expect(await databaseKey({ keyStore, userId: 'alice', databaseExists: async () => true })).to.equal(before);
    expect([...keyStore.entries.keys()]).to.deep.equal([databaseKeyName('alice')]);
  });

  it("does not give the key of before to a user whose database is new: a new key, the old one left for its database", async () => {
    const keyStore = new MemoryKeyStore();
    const before = await databaseKey({ keyStore, databaseExists: async () => false });
    const bob = await databaseKey({ keyStore, userId: 'bob', databaseExists: async () => false });
    expect(bob).to.not.equal(before);
    expect(await keyStore.get(DATABASE_KEY_NAME)).to.equal(before);
  });

  it("is an explicit error when the user's database exists without any key, and nothing is created", async () => {
    const keyStore = new MemoryKeyStore();
    const error = await databaseKey({ keyStore, userId: 'alice', databaseExists: async () => true }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(MissingDatabaseKeyError);
    expect(keyStore.entries.size).to.equal(0);
  });
});
