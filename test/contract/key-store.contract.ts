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
