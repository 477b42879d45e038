import { expect } from 'chai';
import { errAsync, okAsync, type ResultAsync } from 'neverthrow';
import { syncError, tableSpec, type Conflict, type PulledRow, type SyncError, type TableSpec } from '../../src/domain';
import type { ChangeStore, PullPage, PullQuery, PushTransaction, RowWrite } from '../../src/application/ports';

/**
 * The ChangeStore port's contract (src/application/ports/change-store.ts), written once and run
 * against every implementation: the in-memory fake, PGlite and PostgreSQL. It speaks only through
 * the port, plus `conflicts()` to read back what `recordConflicts` stored.
 */

export interface RecordedConflict extends Conflict {
  readonly resolvedAt: number;
}

export interface ChangeStoreUnderTest {
  /** A store with no rows, receipts or conflicts for any user. */
  readonly store: ChangeStore;
  /** The conflicts recorded for a user, oldest first. */
  conflicts(userId: string): Promise<RecordedConflict[]>;
  /** Purges every user's tombstones stamped before `beforeMs`, as the retention job does. */
  purgeTombstones(beforeMs: number): Promise<void>;
  /**
   * Resolves once some call of the store is seen waiting: on a user's lock, or (a store of one
   * connection) for the connection. How a test knows a second push is queued, without guessing
   * how long that takes.
   */
  blocked(): Promise<void>;
}

const IDEAS = tableSpec('ideas')!;
const TODOS = tableSpec('todos')!;
const PROJECTS = tableSpec('projects')!;

const idea = (id: string, text: string, deleted = false): RowWrite => ({ id, values: { thought_id: null, text, created_at: 1000 }, deleted });
const todo = (id: string, description: string): RowWrite => ({
  id,
  values: { thought_id: 't', description, state: 'todo', priority: 'high', deadline: 1736760000000, completed_at: null, project_id: null, created_at: 2000 },
  deleted: false,
});
const project = (id: string, name: string): RowWrite => ({ id, values: { name, color: null, archived: true, created_at: 3000 }, deleted: false });

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}


export function runChangeStoreContract(name: string, makeStore: () => Promise<ChangeStoreUnderTest>): void {
  describe(`ChangeStore contract: ${name}`, () => {
    let subject: ChangeStoreUnderTest;
    let store: ChangeStore;
    beforeEach(async () => {
      subject = await makeStore();
      store = subject.store;
    });

    async function tx<T>(userId: string, work: (tx: PushTransaction) => ResultAsync<T, SyncError>): Promise<T> {
      return (await store.inPushTransaction(userId, work))._unsafeUnwrap();
    }
    /** Writes the rows in one transaction and returns its cursor. */
    const write = (userId: string, table: TableSpec, rows: RowWrite[], device: string | null = null) =>
      tx(userId, (t) => t.writeRows(table, rows, device).andThen(() => t.cursor()));
    async function pull(userId: string, query: Partial<PullQuery> = {}): Promise<PullPage> {
      const q: PullQuery = { since: null, tables: [IDEAS, TODOS, PROJECTS], fullTables: new Set(), limit: 1000, excludeDevice: null, ...query };
      return (await store.pullPage(userId, q))._unsafeUnwrap();
    }
    const ids = (rows: readonly PulledRow[]) => rows.map((r) => `${r.table}/${r.values['id']}`);

    it('answers ping', async () => {
      expect((await store.ping()).isOk()).to.equal(true);
    });

    it("reports a user's purge horizon, the newest purged tombstone's stamp, to pulls and pushes", async () => {
      await write('u1', IDEAS, [idea('a', 'a'), idea('b', 'b')]);
      const deletedAt = await write('u1', IDEAS, [idea('a', 'a', true)]);
      await write('u1', IDEAS, [idea('b', 'b2')]);
      const laterDelete = await write('u1', TODOS, [todo('t', 't')]).then(() => write('u1', IDEAS, [idea('c', 'c', true)]));
      await write('u2', IDEAS, [idea('x', 'x')]);
      expect((await pull('u1')).purgedThrough).to.equal(0);
      await subject.purgeTombstones(Number.MAX_SAFE_INTEGER);
      const page = await pull('u1', { since: deletedAt - 1 });
      expect(page.purgedThrough).to.equal(laterDelete);
      // The tombstones are gone, live rows stay.
      expect(ids(page.rows)).to.deep.equal(['ideas/b', 'todos/t']);
      expect(await tx('u1', (t) => okAsync(t.purgedThrough()))).to.equal(laterDelete);
      expect((await pull('u2')).purgedThrough).to.equal(0);
      expect(await tx('u2', (t) => okAsync(t.purgedThrough()))).to.equal(0);
    });

    it('gives a user who never wrote no rows, a high-water mark of 0 and a cursor of at least 1', async () => {
      expect(await pull('nobody')).to.deep.equal({ rows: [], hasMore: false, highWater: 0, purgedThrough: 0 });
      expect(await tx('nobody', (t) => t.cursor())).to.be.at.least(1);
    });

    it('stores whole rows as given and reads them back, with typed values', async () => {
      await write('u1', TODOS, [todo('t1', 'taxes')], 'phone');
      await write('u1', PROJECTS, [project('p1', 'home')]);
      const page = await pull('u1');
      const [t1, p1] = page.rows;
      expect(t1!.values).to.deep.equal({ id: 't1', ...todo('t1', 'taxes').values, last_modified_at: t1!.lastModifiedAt });
      expect(p1!.values).to.deep.equal({ id: 'p1', ...project('p1', 'home').values, last_modified_at: p1!.lastModifiedAt });
      const loaded = await tx('u1', (t) => t.loadRows(TODOS, ['t1', 'missing']));
      expect([...loaded.keys()]).to.deep.equal(['t1']);
      expect(loaded.get('t1')).to.deep.equal({ values: { id: 't1', ...todo('t1', 'taxes').values }, deleted: false, lastModifiedAt: t1!.lastModifiedAt, lastModifiedBy: 'phone' });
      expect((await tx('u1', (t) => t.loadRows(PROJECTS, ['p1']))).get('p1')!.lastModifiedBy).to.equal(null);
    });

    it('loads nothing for missing ids or an empty list', async () => {
      await write('u1', IDEAS, [idea('i1', 'x')]);
      expect((await tx('u1', (t) => t.loadRows(IDEAS, ['nope', 'i2']))).size).to.equal(0);
      expect((await tx('u1', (t) => t.loadRows(IDEAS, []))).size).to.equal(0);
      expect((await tx('u1', (t) => t.loadRows(TODOS, ['i1']))).size).to.equal(0);
    });

    it("keeps each user's stored bytes: added with a commit, discarded with a rollback", async () => {
      expect(await tx('q1', (t) => okAsync(t.storedBytes()))).to.equal(0);
      await tx('q1', (t) => {
        t.addStoredBytes(500);
        t.addStoredBytes(-100);
        return okAsync(t.storedBytes());
      });
      const failed = await store.inPushTransaction('q1', (t) => {
        t.addStoredBytes(10_000);
        return errAsync(syncError('VALIDATION_FAILED', 'no'));
      });
      expect(failed.isErr()).to.equal(true);
      expect(await tx('q1', (t) => okAsync(t.storedBytes()))).to.equal(400);
      expect(await tx('q2', (t) => okAsync(t.storedBytes())), 'another user').to.equal(0);
    });

    describe('stamps', () => {
      it('are unique and strictly increasing per user, across tables and transactions, and bounded by the cursor', async () => {
        const c1 = await tx('u1', (t) =>
          t
            .writeRows(IDEAS, [idea('a', '1'), idea('b', '2')], null)
            .andThen(() => t.writeRows(TODOS, [todo('t', '3')], null))
            .andThen(() => t.cursor()),
        );
        const c2 = await write('u1', PROJECTS, [project('p', '4')]);
        const c3 = await write('u1', IDEAS, [idea('c', '5')]);
        const page = await pull('u1');
        expect(ids(page.rows)).to.deep.equal(['ideas/a', 'ideas/b', 'todos/t', 'projects/p', 'ideas/c']);
        const stamps = page.rows.map((r) => r.lastModifiedAt);
        for (let i = 1; i < stamps.length; i++) expect(stamps[i]).to.be.greaterThan(stamps[i - 1]!);
        expect(stamps[2]).to.be.at.most(c1);
        expect(stamps[3]).to.be.greaterThan(c1).and.at.most(c2);
        expect(stamps[4]).to.be.greaterThan(c2).and.at.most(c3);
        expect(page.highWater).to.equal(c3);
      });

      it('keep the first write and move on every later write, a delete included', async () => {
        await write('u1', IDEAS, [idea('i1', 'v1')]);
        const [created] = (await pull('u1')).rows;
        expect(created!.firstWrittenAt).to.equal(created!.lastModifiedAt);

        const since = await write('u1', IDEAS, [idea('i1', 'v2')]);
        const [updated] = (await pull('u1')).rows;
        expect(updated!.firstWrittenAt).to.equal(created!.firstWrittenAt);
        expect(updated!.lastModifiedAt).to.be.greaterThan(created!.lastModifiedAt);

        await write('u1', IDEAS, [idea('i1', 'v2', true)]);
        const [deleted] = (await pull('u1', { since })).rows;
        expect(deleted).to.deep.include({ deleted: true, firstWrittenAt: created!.firstWrittenAt });
        expect(deleted!.lastModifiedAt).to.be.greaterThan(updated!.lastModifiedAt);
      });

      it("are the writing transaction's cursor, so a later write always lands above it", async () => {
        const c1 = await write('u1', IDEAS, [idea('i1', 'x')]);
        expect(await tx('u1', (t) => t.cursor())).to.equal(c1);
        await write('u1', IDEAS, [idea('i2', 'y')]);
        const page = await pull('u1', { since: c1 });
        expect(ids(page.rows)).to.deep.equal(['ideas/i2']);
        expect(page.rows[0]!.lastModifiedAt).to.be.greaterThan(c1);
      });
    });

    describe('isolation between users', () => {
      it("never reads or loads another user's rows, even under the same id", async () => {
        await write('ana', IDEAS, [idea('shared', "ana's")]);
        await write('bob', IDEAS, [idea('shared', "bob's"), idea('b-only', 'b')]);
        expect((await pull('ana')).rows.map((r) => r.values['text'])).to.deep.equal(["ana's"]);
        const loaded = await tx('ana', (t) => t.loadRows(IDEAS, ['shared', 'b-only']));
        expect([...loaded.keys()]).to.deep.equal(['shared']);
        expect(loaded.get('shared')!.values['text']).to.equal("ana's");
        expect((await pull('carl')).highWater).to.equal(0);
      });

      it("never finds another user's receipt or lists another user's conflicts", async () => {
        const conflict: Conflict = { table: 'ideas', id: 'shared', type: 'update_update', resolution: 'per_column', clientColumns: ['text'], serverColumns: [] };
        await tx('ana', (t) => t.saveReceipt('p1', { bodyHash: 'h', response: { ok: 1 } }, 1000, 0).andThen(() => t.recordConflicts([conflict], 1000)));
        expect(await tx('bob', (t) => t.findReceipt('p1', 0))).to.equal(null);
        expect(await subject.conflicts('bob')).to.deep.equal([]);
        expect(await subject.conflicts('ana')).to.have.length(1);
      });

      it('takes a user id literally: quotes, a backslash, $& and a question mark are not SQL', async () => {
        // Bad input tried: ids that would break a quoted literal, a replacement pattern or a placeholder.
        const odd = ["o'brien\\", "x' OR '1'='1", 'a$&b$1?c', "?'--"];
        for (const [i, user] of odd.entries()) {
          await write(user, IDEAS, [idea(`i${i}`, user)]);
          await tx(user, (t) => t.saveReceipt(`p${i}`, { bodyHash: user, response: { i } }, 1000, 0));
        }
        for (const [i, user] of odd.entries()) {
          const page = await pull(user);
          expect(page.rows.map((r) => [r.values['id'], r.values['text']])).to.deep.equal([[`i${i}`, user]]);
          // A transaction that writes nothing answers the newest stamp its lock read: this user's.
          expect(await tx(user, (t) => t.cursor())).to.equal(page.highWater);
          expect(await tx(user, (t) => t.findReceipt(`p${i}`, 0))).to.deep.equal({ bodyHash: user, response: { i } });
          expect([...(await tx(user, (t) => t.loadRows(IDEAS, odd.map((_, k) => `i${k}`)))).keys()]).to.deep.equal([`i${i}`]);
        }
        expect((await pull('x')).rows).to.deep.equal([]);
      });
    });

    describe('atomicity', () => {
      const conflict: Conflict = { table: 'ideas', id: 'i1', type: 'update_update', resolution: 'per_column', clientColumns: ['text'], serverColumns: [] };
      /** Writes, records a conflict and a receipt, checks it sees its own writes, then ends the given way. */
      const failingWork = <T>(finish: () => ResultAsync<T, SyncError>) => (t: PushTransaction) =>
        t
          .writeRows(IDEAS, [idea('i1', 'changed'), idea('i2', 'new')], 'phone')
          .andThen(() => t.writeRows(TODOS, [todo('t1', 'new')], null))
          .andThen(() => t.recordConflicts([conflict], 5000))
          .andThen(() => t.saveReceipt('push-1', { bodyHash: 'h', response: { timestamp: 1 } }, 5000, 0))
          .andThen(() => t.loadRows(IDEAS, ['i1', 'i2']))
          .andThen((seen) => {
            expect(seen.get('i1')!.values['text']).to.equal('changed');
            expect(seen.has('i2')).to.equal(true);
            return finish();
          });

      async function expectNothingWritten(before: PullPage) {
        expect(await pull('u1')).to.deep.equal(before);
        expect(await tx('u1', (t) => t.findReceipt('push-1', 0))).to.equal(null);
        expect(await subject.conflicts('u1')).to.deep.equal([]);
        expect((await tx('u1', (t) => t.loadRows(IDEAS, ['i1']))).get('i1')!.values['text']).to.equal('original');
      }

      let before: PullPage;
      beforeEach(async () => {
        await write('u1', IDEAS, [idea('i1', 'original')]);
        before = await pull('u1');
      });

      it('writes nothing, and returns that error, when work returns an error', async () => {
        const refusal = syncError('VALIDATION_FAILED', 'no');
        const result = await store.inPushTransaction('u1', failingWork(() => errAsync(refusal)));
        expect(result._unsafeUnwrapErr()).to.deep.equal(refusal);
        await expectNothingWritten(before);
      });

      it('writes nothing, and returns INTERNAL, when work throws midway', async () => {
        const result = await store.inPushTransaction(
          'u1',
          failingWork(() => {
            throw new Error('defect');
          }),
        );
        expect(result._unsafeUnwrapErr().code).to.equal('INTERNAL');
        await expectNothingWritten(before);
      });

      it('returns INTERNAL when work throws before returning', async () => {
        const result = await store.inPushTransaction('u1', () => {
          throw new Error('defect');
        });
        expect(result._unsafeUnwrapErr().code).to.equal('INTERNAL');
        expect(await pull('u1')).to.deep.equal(before);
      });

      it("commits everything when work succeeds, and returns work's value", async () => {
        const value = await tx('u1', failingWork(() => okAsync('done')));
        expect(value).to.equal('done');
        expect(ids((await pull('u1')).rows)).to.deep.equal(['ideas/i1', 'ideas/i2', 'todos/t1']);
        expect(await tx('u1', (t) => t.findReceipt('push-1', 0))).to.deep.equal({ bodyHash: 'h', response: { timestamp: 1 } });
        expect(await subject.conflicts('u1')).to.deep.equal([{ ...conflict, resolvedAt: 5000 }]);
      });
    });

    describe('serialization', () => {
      it("runs one user's push transactions one after another, the later seeing the earlier's writes", async () => {
        const entered = deferred();
        const release = deferred();
        const first = store.inPushTransaction('u1', (t) =>
          t.writeRows(IDEAS, [idea('i1', 'first')], null).andThen(() => {
            entered.resolve();
            return okAsync(release.promise).map(async (p) => p);
          }),
        );
        await entered.promise;
        let secondStarted = false;
        const second = store.inPushTransaction('u1', (t) => {
          secondStarted = true;
          return t.loadRows(IDEAS, ['i1']);
        });
        await subject.blocked();
        expect(secondStarted).to.equal(false);
        release.resolve();
        expect((await first).isOk()).to.equal(true);
        expect((await second)._unsafeUnwrap().get('i1')!.values['text']).to.equal('first');
      });

      it('gives a pull during a push a consistent view: the rows at or below its high-water mark, all committed', async () => {
        await write('u1', IDEAS, [idea('i0', 'old')]);
        const entered = deferred();
        const release = deferred();
        const push = store.inPushTransaction('u1', (t) =>
          t
            .writeRows(IDEAS, [idea('i1', 'new')], null)
            .andThen(() => t.cursor())
            .andThen((cursor) => {
              entered.resolve();
              return okAsync(release.promise).map(async () => cursor);
            }),
        );
        await entered.promise;
        const during = store.pullPage('u1', { since: null, tables: [IDEAS], fullTables: new Set(), limit: 100, excludeDevice: null });
        // The pull answers while the push is open (a store of several connections), or waits for it (PGlite's one connection).
        await Promise.race([during, subject.blocked()]);
        release.resolve();
        const stamp = (await push)._unsafeUnwrap();
        const page = (await during)._unsafeUnwrap();
        if (page.highWater >= stamp) expect(ids(page.rows)).to.deep.equal(['ideas/i0', 'ideas/i1']);
        else expect(ids(page.rows)).to.deep.equal(['ideas/i0']);
        for (const r of page.rows) expect(r.lastModifiedAt).to.be.at.most(page.highWater);
      });
    });

    describe('receipts', () => {
      const receipt = { bodyHash: 'abc', response: { timestamp: 42, conflicts: [{ table: 'todos', id: 't1', type: 'update_update', resolution: 'per_column' }] } };

      it('finds a receipt stored at or after notBefore, and nothing older or unknown', async () => {
        await tx('u1', (t) => t.saveReceipt('p1', receipt, 10_000, 0));
        expect(await tx('u1', (t) => t.findReceipt('p1', 10_000))).to.deep.equal(receipt);
        expect(await tx('u1', (t) => t.findReceipt('p1', 10_001))).to.equal(null);
        expect(await tx('u1', (t) => t.findReceipt('p2', 0))).to.equal(null);
      });

      it('replaces an expired receipt with the same id and forgets those older than forgetBefore', async () => {
        await tx('u1', (t) => t.saveReceipt('old', receipt, 1_000, 0).andThen(() => t.saveReceipt('kept', receipt, 3_000, 0)));
        await tx('u1', (t) => t.saveReceipt('old', { bodyHash: 'new', response: { timestamp: 7 } }, 5_000, 2_000));
        expect(await tx('u1', (t) => t.findReceipt('old', 0))).to.deep.equal({ bodyHash: 'new', response: { timestamp: 7 } });
        expect(await tx('u1', (t) => t.findReceipt('kept', 0))).to.deep.equal(receipt);
        await tx('u1', (t) => t.saveReceipt('other', receipt, 9_000, 4_000));
        expect(await tx('u1', (t) => t.findReceipt('kept', 0))).to.equal(null);
      });

      describe('announced to inPushTransaction (a store may read it with the lock)', () => {
        const find = (pushId: string, notBefore: number, announced: { pushId: string; notBeforeMs: number }) =>
          store.inPushTransaction('u1', (t) => t.findReceipt(pushId, notBefore), announced).then((r) => r._unsafeUnwrap());

        it('finds what an unannounced lookup finds: for its id, at or after the bound it is given', async () => {
          await tx('u1', (t) => t.saveReceipt('p1', receipt, 10_000, 0));
          expect(await find('p1', 10_000, { pushId: 'p1', notBeforeMs: 0 })).to.deep.equal(receipt);
          // A later bound than announced: the receipt is older than it.
          expect(await find('p1', 10_001, { pushId: 'p1', notBeforeMs: 0 })).to.equal(null);
          // An earlier bound than announced, or another id: looked up as asked.
          expect(await find('p1', 5_000, { pushId: 'p1', notBeforeMs: 20_000 })).to.deep.equal(receipt);
          expect(await find('p1', 0, { pushId: 'p2', notBeforeMs: 0 })).to.deep.equal(receipt);
          expect(await find('p2', 0, { pushId: 'p2', notBeforeMs: 0 })).to.equal(null);
        });

        it('sees a receipt saved by the push it waited for, under the same id', async () => {
          const entered = deferred();
          const release = deferred();
          const first = store.inPushTransaction('u1', (t) =>
            t.saveReceipt('same', receipt, 10_000, 0).andThen(() => {
              entered.resolve();
              return okAsync(release.promise).map(async (p) => p);
            }),
          );
          await entered.promise;
          const second = store.inPushTransaction('u1', (t) => t.findReceipt('same', 0), { pushId: 'same', notBeforeMs: 0 });
          // Waiting on the lock, so its lookup can only run once the first push committed.
          await subject.blocked();
          release.resolve();
          expect((await first).isOk()).to.equal(true);
          expect((await second)._unsafeUnwrap()).to.deep.equal(receipt);
        });
      });
    });

    it('records conflicts with the columns each side won and the resolution time', async () => {
      const conflicts: Conflict[] = [
        { table: 'captures', id: 'c1', type: 'update_update', resolution: 'per_column', clientColumns: ['tags'], serverColumns: ['state', 'normalized_text'] },
        { table: 'ideas', id: 'i1', type: 'update_delete', resolution: 'delete_wins', clientColumns: [], serverColumns: ['text'] },
      ];
      await tx('u1', (t) => t.recordConflicts(conflicts, 12_345));
      expect(await subject.conflicts('u1')).to.deep.equal(conflicts.map((c) => ({ ...c, resolvedAt: 12_345 })));
    });

    describe('pullPage', () => {
      /** ideas i1, todos t1, ideas i2, todos t2, ideas i3: one transaction each. */
      let cursors: number[];
      beforeEach(async () => {
        cursors = [];
        for (const [table, row] of [[IDEAS, idea('i1', '')], [TODOS, todo('t1', '')], [IDEAS, idea('i2', '')], [TODOS, todo('t2', '')], [IDEAS, idea('i3', '')]] as const) {
          cursors.push(await write('u1', table, [row]));
        }
      });

      it('cuts at limit in stamp order across tables, says hasMore, and resumes after the last row', async () => {
        const first = await pull('u1', { limit: 3 });
        expect(ids(first.rows)).to.deep.equal(['ideas/i1', 'todos/t1', 'ideas/i2']);
        expect(first.hasMore).to.equal(true);
        expect(first.highWater).to.equal(cursors[4]);
        const rest = await pull('u1', { limit: 3, since: first.rows[2]!.lastModifiedAt });
        expect(ids(rest.rows)).to.deep.equal(['todos/t2', 'ideas/i3']);
        expect(rest.hasMore).to.equal(false);
      });

      // Issue 20, item 1: pages were cut by rows only, so a page of large rows could exhaust the heap.
      it('cuts by maxBytes too: with a cap below any row every page holds exactly one row, and resuming walks every row once', async () => {
        const walked: string[] = [];
        let since: number | null = null;
        for (let pages = 0; pages < 20; pages++) {
          const page = await pull('u1', { maxBytes: 1, since });
          expect(page.rows, 'a page always holds one row').to.have.length(1);
          walked.push(...ids(page.rows));
          if (!page.hasMore) break;
          since = page.rows[0]!.lastModifiedAt;
        }
        expect(walked).to.deep.equal(['ideas/i1', 'todos/t1', 'ideas/i2', 'todos/t2', 'ideas/i3']);
      });

      it('a row far larger than maxBytes goes alone on its page, and the rows after it follow', async () => {
        await write('u1', TODOS, [todo('big', 'x'.repeat(20_000))]);
        await write('u1', IDEAS, [idea('i4', 'after')]);
        const first = await pull('u1', { maxBytes: 10_000, since: cursors[4] });
        expect(ids(first.rows)).to.deep.equal(['todos/big']);
        expect(first.hasMore).to.equal(true);
        const rest = await pull('u1', { maxBytes: 10_000, since: first.rows[0]!.lastModifiedAt });
        expect(ids(rest.rows)).to.deep.equal(['ideas/i4']);
        expect(rest.hasMore).to.equal(false);
        const all = await pull('u1', { maxBytes: 1_000_000 });
        expect(all.rows).to.have.length(7);
        expect(all.hasMore).to.equal(false);
      });

      it('says no more when the rows fit the limit exactly', async () => {
        const page = await pull('u1', { limit: 5 });
        expect(page.rows).to.have.length(5);
        expect(page.hasMore).to.equal(false);
      });

      it('reads only the requested tables, and only rows after since', async () => {
        expect(ids((await pull('u1', { tables: [TODOS] })).rows)).to.deep.equal(['todos/t1', 'todos/t2']);
        expect(ids((await pull('u1', { since: cursors[2] })).rows)).to.deep.equal(['todos/t2', 'ideas/i3']);
        expect(await pull('u1', { since: cursors[4] })).to.deep.equal({ rows: [], hasMore: false, highWater: cursors[4], purgedThrough: 0 });
      });

      it('sends tombstones after since, and leaves them out of a read from the beginning', async () => {
        await write('u1', IDEAS, [idea('i1', '', true)]);
        const since = (await pull('u1', { since: cursors[4] })).rows;
        expect(since.map((r) => [r.values['id'], r.deleted])).to.deep.equal([['i1', true]]);
        expect(ids((await pull('u1')).rows)).to.deep.equal(['todos/t1', 'ideas/i2', 'todos/t2', 'ideas/i3']);
      });

      it("leaves out, after since, the versions the excluded device wrote, and keeps server-made ones", async () => {
        const since = cursors[4]!;
        await write('u1', IDEAS, [idea('mine', '')], 'phone');
        await write('u1', IDEAS, [idea('merged', '')], null);
        await write('u1', IDEAS, [idea('theirs', '')], 'laptop');
        await write('u1', IDEAS, [idea('i1', '', true)], 'phone');
        expect(ids((await pull('u1', { since, excludeDevice: 'phone' })).rows)).to.deep.equal(['ideas/merged', 'ideas/theirs']);
        expect(ids((await pull('u1', { since, excludeDevice: null })).rows)).to.deep.equal(['ideas/mine', 'ideas/merged', 'ideas/theirs', 'ideas/i1']);
      });

      it('does not filter by device when reading from the beginning', async () => {
        await write('u1', IDEAS, [idea('mine', '')], 'phone');
        expect(ids((await pull('u1', { tables: [IDEAS], excludeDevice: 'phone' })).rows)).to.deep.equal(['ideas/i1', 'ideas/i2', 'ideas/i3', 'ideas/mine']);
      });

      it('reads fullTables from the beginning, active rows only and unfiltered, and the others after since', async () => {
        await write('u1', IDEAS, [idea('i2', '', true)]);
        await write('u1', IDEAS, [idea('mine', '')], 'phone');
        const since = await write('u1', TODOS, [todo('t1', 'edited')], 'laptop');
        await write('u1', TODOS, [todo('t3', '')], 'laptop');
        const page = await pull('u1', { since, fullTables: new Set(['ideas']), excludeDevice: 'phone' });
        expect(ids(page.rows)).to.deep.equal(['ideas/i1', 'ideas/i3', 'ideas/mine', 'todos/t3']);
      });
    });
  });
}
