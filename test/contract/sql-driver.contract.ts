import { expect } from 'chai';
import type { SqlDriver } from '../../mobile/src/ports';

/**
 * The SqlDriver port's contract (mobile/src/ports/sql-driver.ts), written once and run against
 * every driver: a transaction commits all of its statements or none; statements issued from
 * outside while a transaction is open wait for it (never run inside it, never roll back with it);
 * statements run in the order issued; only SELECT returns rows; executeMany is one statement run
 * per parameter set, with the same rules; a closed driver refuses work.
 */

export interface SqlDriverUnderTest {
  /** A driver over an empty database. */
  readonly driver: SqlDriver;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets every job queued so far (and the jobs they queue) run. */
const settle = () => new Promise((r) => setImmediate(r));

export function runSqlDriverContract(name: string, open: () => Promise<SqlDriverUnderTest>): void {
  describe(`SqlDriver contract: ${name}`, () => {
    let driver: SqlDriver;
    let closed = false;
    beforeEach(async () => {
      driver = (await open()).driver;
      closed = false;
      await driver.execute('CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL, note TEXT)');
    });
    afterEach(async () => {
      if (!closed) await driver.close();
    });

    const labels = async () => (await driver.execute('SELECT label FROM items ORDER BY id')).map((r) => r['label']);

    it('binds parameters, null included, and returns SELECT rows keyed by column name', async () => {
      await driver.execute('INSERT INTO items (id, label, note) VALUES (?, ?, ?)', [1, 'a', null]);
      await driver.execute('INSERT INTO items (id, label, note) VALUES (?, ?, ?)', [2, "it's \"quoted\"", 'n']);
      expect(await driver.execute('SELECT id, label, note FROM items ORDER BY id')).to.deep.equal([
        { id: 1, label: 'a', note: null },
        { id: 2, label: "it's \"quoted\"", note: 'n' },
      ]);
      expect(await driver.execute('  select label from items where id = ?', [2])).to.deep.equal([{ label: "it's \"quoted\"" }]);
    });

    it('returns no rows for statements that are not SELECT', async () => {
      expect(await driver.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['a'])).to.deep.equal([]);
      expect(await driver.execute('UPDATE items SET note = ? WHERE id = 1', ['x'])).to.deep.equal([]);
      expect(await driver.execute('PRAGMA user_version')).to.deep.equal([]);
      expect(await driver.execute('SELECT note FROM items')).to.deep.equal([{ note: 'x' }]);
    });

    it('rejects a failing statement and keeps working afterwards', async () => {
      await driver.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['a']);
      const failed = await driver.execute('INSERT INTO items (id, label) VALUES (2, NULL)').then(
        () => null,
        (e: unknown) => e,
      );
      expect(failed).to.be.instanceOf(Error);
      expect((failed as Error).message).to.match(/NOT NULL/);
      expect(await driver.execute('SELECT count(*) AS n FROM items')).to.deep.equal([{ n: 1 }]);
    });

    it('executeMany runs one statement once per parameter set, in order, nulls bound, and returns nothing', async () => {
      const result = await driver.executeMany('INSERT INTO items (id, label, note) VALUES (?, ?, ?), (?, ?, ?)', [
        [1, 'a', null, 2, 'b', 'n2'],
        [3, "it's", 'n3', 4, 'd', null],
      ]);
      expect(result).to.equal(undefined);
      // Each set sees the rows of the sets before it.
      await driver.executeMany('UPDATE items SET note = (SELECT count(*) FROM items WHERE note IS NOT NULL) WHERE id = ?', [[1], [4]]);
      expect(await driver.execute('SELECT id, label, note FROM items ORDER BY id')).to.deep.equal([
        { id: 1, label: 'a', note: '2' },
        { id: 2, label: 'b', note: 'n2' },
        { id: 3, label: "it's", note: 'n3' },
        { id: 4, label: 'd', note: '3' },
      ]);
      await driver.executeMany('INSERT INTO items (id, label) VALUES (?, ?)', []);
      expect(await labels()).to.have.length(4);
    });

    it('executeMany stops at the first failing set (a NOT NULL and a duplicate id tried), keeps the sets before it, and the driver keeps working', async () => {
      const failed = await driver.executeMany('INSERT INTO items (id, label) VALUES (?, ?)', [[1, 'a'], [2, null], [3, 'c']]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(failed).to.be.instanceOf(Error);
      expect((failed as Error).message).to.match(/NOT NULL/);
      expect(await labels()).to.deep.equal(['a']);
      const duplicate = await driver.executeMany('INSERT INTO items (id, label) VALUES (?, ?)', [[2, 'b'], [1, 'again']]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(duplicate).to.be.instanceOf(Error);
      expect(await labels()).to.deep.equal(['a', 'b']);
      await driver.executeMany('INSERT INTO items (id, label) VALUES (?, ?)', [[3, 'c']]);
      expect(await labels()).to.deep.equal(['a', 'b', 'c']);
    });

    it('executeMany in a transaction commits with it, or rolls back with it when fn throws', async () => {
      await driver.transaction(async (tx) => {
        await tx.executeMany('INSERT INTO items (id, label) VALUES (?, ?)', [[1, 'a'], [2, 'b']]);
        expect(await tx.execute('SELECT count(*) AS n FROM items')).to.deep.equal([{ n: 2 }]);
      });
      const boom = new Error('boom');
      const caught = await driver
        .transaction(async (tx) => {
          await tx.executeMany('INSERT INTO items (id, label) VALUES (?, ?)', [[3, 'c'], [4, 'd']]);
          throw boom;
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(caught).to.equal(boom);
      expect(await labels()).to.deep.equal(['a', 'b']);
    });

    it('commits every statement of a transaction and returns what fn returned', async () => {
      const result = await driver.transaction(async (tx) => {
        await tx.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['a']);
        await tx.execute('INSERT INTO items (id, label) VALUES (2, ?)', ['b']);
        const rows = await tx.execute('SELECT count(*) AS n FROM items');
        return rows[0]!['n'];
      });
      expect(result).to.equal(2);
      expect(await labels()).to.deep.equal(['a', 'b']);
    });

    it('commits none of a transaction when fn throws, and rethrows the same error', async () => {
      await driver.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['before']);
      const boom = new Error('boom');
      const caught = await driver
        .transaction(async (tx) => {
          await tx.execute('INSERT INTO items (id, label) VALUES (2, ?)', ['inside']);
          await tx.execute('UPDATE items SET label = ? WHERE id = 1', ['changed inside']);
          throw boom;
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(caught).to.equal(boom);
      expect(await labels()).to.deep.equal(['before']);
    });

    it('rolls back a transaction whose statement fails, and can open another afterwards', async () => {
      const caught = await driver
        .transaction(async (tx) => {
          await tx.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['a']);
          await tx.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['duplicate id']);
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(caught).to.be.instanceOf(Error);
      expect(await labels()).to.deep.equal([]);
      await driver.transaction(async (tx) => {
        await tx.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['second try']);
      });
      expect(await labels()).to.deep.equal(['second try']);
    });

    it('makes statements (execute and executeMany) issued outside an open transaction wait, and keeps them when it rolls back', async () => {
      const inside = deferred();
      const proceed = deferred();
      const tx = driver
        .transaction(async (t) => {
          await t.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['in the transaction']);
          inside.resolve();
          await proceed.promise;
          throw new Error('roll back');
        })
        .catch((e: Error) => e.message);
      await inside.promise;
      let outsideDone = false;
      const outside = driver.execute('INSERT INTO items (id, label) VALUES (2, ?)', ['outside']).then(() => (outsideDone = true));
      let manyDone = false;
      const outsideMany = driver.executeMany('INSERT INTO items (id, label) VALUES (?, ?)', [[3, 'outside many']]).then(() => (manyDone = true));
      let seen: unknown[] | null = null;
      const read = driver.execute('SELECT label FROM items ORDER BY id').then((rows) => (seen = rows.map((r) => r['label'])));
      await settle();
      expect(outsideDone, 'an outside statement ran while the transaction was open').to.equal(false);
      expect(manyDone, 'an outside executeMany ran while the transaction was open').to.equal(false);
      expect(seen).to.equal(null);
      proceed.resolve();
      expect(await tx).to.equal('roll back');
      await Promise.all([outside, outsideMany, read]);
      expect(seen, 'the outside read ran after the rollback').to.deep.equal(['outside', 'outside many']);
      expect(await labels()).to.deep.equal(['outside', 'outside many']);
    });

    it('lets an outside read that waited on a committed transaction see its rows', async () => {
      const inside = deferred();
      const proceed = deferred();
      const tx = driver.transaction(async (t) => {
        await t.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['committed']);
        inside.resolve();
        await proceed.promise;
      });
      await inside.promise;
      const read = driver.execute('SELECT label FROM items');
      proceed.resolve();
      await tx;
      expect(await read).to.deep.equal([{ label: 'committed' }]);
    });

    it('runs statements and transactions in the order they were issued', async () => {
      const issued: Array<Promise<unknown>> = [];
      for (let i = 1; i <= 5; i++) issued.push(driver.execute('INSERT INTO items (id, label) VALUES (?, ?)', [i, `s${i}`]));
      issued.push(
        driver.transaction(async (tx) => {
          await tx.execute('UPDATE items SET note = ? WHERE id = 5', ['seen by tx']);
          await tx.execute('INSERT INTO items (id, label) VALUES (6, ?)', ['t6']);
        }),
      );
      issued.push(driver.execute('UPDATE items SET label = ? WHERE id = 6', ['after tx']));
      const counted = driver.execute('SELECT count(*) AS n FROM items');
      await Promise.all(issued);
      expect(await counted).to.deep.equal([{ n: 6 }]);
      expect(await labels()).to.deep.equal(['s1', 's2', 's3', 's4', 's5', 'after tx']);
      expect(await driver.execute('SELECT note FROM items WHERE id = 5')).to.deep.equal([{ note: 'seen by tx' }]);
    });

    it('finishes statements issued before close, then refuses statements and transactions', async () => {
      const before = driver.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['before close']);
      const counted = driver.execute('SELECT count(*) AS n FROM items');
      await driver.close();
      closed = true;
      await before;
      expect(await counted).to.deep.equal([{ n: 1 }]);
      const afterExecute = await driver.execute('SELECT 1').then(
        () => 'resolved',
        (e: unknown) => e,
      );
      expect(afterExecute).to.be.instanceOf(Error);
      const afterTransaction = await driver.transaction(async () => 'ran').then(
        (v) => v,
        (e: unknown) => e,
      );
      expect(afterTransaction).to.be.instanceOf(Error);
      const afterMany = await driver.executeMany('SELECT 1', [[]]).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      expect(afterMany).to.be.instanceOf(Error);
    });

    it('refuses a statement issued while close is under way, with its own error, and closes once (a second close is a no-op)', async () => {
      const before = driver.execute('INSERT INTO items (id, label) VALUES (1, ?)', ['before close']);
      const closing = driver.close();
      closed = true;
      const during = await driver.execute('SELECT 1').then(
        () => 'resolved',
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      );
      await closing;
      await before;
      expect(during).to.match(/closed/i);
      await driver.close();
    });
  });
}
