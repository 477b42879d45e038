import { expect } from 'chai';
import type { KeyStore } from '../../mobile/src/ports';

/** The KeyStore contract (mobile/src/ports/key-store.ts), run against every implementation. */
export function runKeyStoreContract(name: string, make: () => { store: KeyStore; restart: () => KeyStore }): void {
  describe(`KeyStore contract: ${name}`, () => {
    it('reads null for a name never set', async () => {
      expect(await make().store.get('nothing')).to.equal(null);
    });

    it('reads a value back, also after a restart, per name', async () => {
      const { store, restart } = make();
      await store.set('a', 'secret-a');
      await store.set('b', 'secret-b');
      expect(await store.get('a')).to.equal('secret-a');
      const again = restart();
      expect([await again.get('a'), await again.get('b')]).to.deep.equal(['secret-a', 'secret-b']);
    });

    it('replaces a value set twice', async () => {
      const { store } = make();
      await store.set('a', 'one');
      await store.set('a', 'two');
      expect(await store.get('a')).to.equal('two');
    });

    it('takes any non-empty name, and keeps names apart that differ in any character', async () => {
      const { store, restart } = make();
      // A user id from an identity provider, spaces, non-ASCII, and names that an escaping
      // scheme could fold together ('a|b' and the escaped form of it).
      const names = ['note-sync.database-key.auth0|42', 'user 7/ключ é', 'a|b', 'a_007cb', 'a_b', 'a.b', 'A.b'];
      for (const [i, name] of names.entries()) await store.set(name, `secret-${i}`);
      const again = restart();
      expect(await Promise.all(names.map((n) => again.get(n)))).to.deep.equal(names.map((_, i) => `secret-${i}`));
      expect(await again.get('a-b')).to.equal(null);
    });

    it('removes an entry, also after a restart, and only that one; removing a name never set is no error', async function () {
      const { store, restart } = make();
      if (!store.remove) return this.skip(); // optional: a store without it cannot serve a sign-out that wipes
      await store.set('a', 'one');
      await store.set('b', 'two');
      await store.remove('a');
      await store.remove('never-set');
      const again = restart();
      expect([await again.get('a'), await again.get('b')]).to.deep.equal([null, 'two']);
    });
  });
}
