import { expect } from 'chai';
import { networkFailure, tableSpec, timeoutFailure, type WireRecord } from '../../../src/domain';
import { createInProcessServer } from '../../fakes/in-process-transport';
import { USER, openClient, type ClientHarness, type HarnessOptions } from './client-harness';

/**
 * What one sync does with the data (spec §5): cursors move only after a page is committed
 * locally, batches carry a push_id that a retry of the same batch reuses, a batch that is too large
 * is split, and records the server refuses are set aside without blocking the rest.
 */
describe('SyncClient pull and push', () => {
  let h: ClientHarness;
  const open = async (o: HarnessOptions = {}) => (h = await openClient(o));
  afterEach(async () => {
    await h?.close();
  });

  const todo = (id: string, values: Partial<WireRecord> = {}): WireRecord => ({
    thought_id: null,
    description: `todo ${id}`,
    state: 'todo',
    priority: 'medium',
    deadline: null,
    completed_at: null,
    project_id: null,
    created_at: 1,
    ...values,
  });
  /** Writes rows on the server as another server process would, bypassing push validation. */
  const serverWrite = (table: string, rows: Array<{ id: string; values: WireRecord }>) =>
    h.server.store.inPushTransaction(USER, (tx) => tx.writeRows(tableSpec(table)!, rows.map((r) => ({ ...r, deleted: false })), null));

  describe('checkpoints', () => {
    it('moves each table\'s cursor after its pulled page is committed', async () => {
      await open();
      await serverWrite('captures', [{ id: 'c1', values: { type: 'text', raw_content: 'x', normalized_text: null, state: 'captured', tags: '[]', project_id: null, duration_ms: null, created_at: 1 } }]);
      await serverWrite('todos', [{ id: 't1', values: todo('t1') }]);
      expect((await h.client.sync()).isOk()).to.equal(true);
      const cursor = h.server.store.snapshot(USER).lastStamp;
      expect(await h.checkpoints.getLastPulledAt('captures')).to.equal(cursor);
      expect(await h.checkpoints.getLastPulledAt('todos')).to.equal(cursor);
      expect(await h.client.local.get('todos', 't1')).to.include({ description: 'todo t1' });
    });

    it('leaves the cursor where it was when the local database rejects a pulled page, and the sync fails', async () => {
      await open();
      expect((await h.client.sync()).isOk()).to.equal(true);
      const before = await h.checkpoints.getLastPulledAt('todos');
      expect(before).to.be.a('number');
      await serverWrite('ideas', [{ id: 'i1', values: { thought_id: null, text: 'fine', created_at: 1 } }]);
      // A row another writer left without its NOT NULL description: SQLite on the device refuses it.
      await serverWrite('todos', [
        { id: 'good', values: todo('good') },
        { id: 'broken', values: todo('broken', { description: null }) },
      ]);
      const result = await h.client.sync();
      expect(result.isErr()).to.equal(true);
      expect(await h.checkpoints.getLastPulledAt('todos')).to.equal(before);
      expect(await h.client.local.get('todos', 'good')).to.equal(null);
      expect(h.client.getStatus().state).to.equal('error');

      await serverWrite('todos', [{ id: 'broken', values: todo('broken', { description: 'repaired' }) }]);
      expect((await h.client.sync()).isOk()).to.equal(true);
      expect((await h.client.local.query('todos', { orderBy: 'id' })).map((t) => t['description'])).to.deep.equal(['repaired', 'todo good']);
      expect((await h.client.local.get('ideas', 'i1'))?.['text']).to.equal('fine');
      expect(await h.checkpoints.getLastPulledAt('todos')).to.be.greaterThan(before!);
    });
  });

  describe('push ids', () => {
    it('gives each batch its own push_id', async () => {
      await open({ client: { batchSize: 2 } });
      for (const id of ['a', 'b', 'c', 'd', 'e']) await h.client.local.create('ideas', { id, text: id });
      expect((await h.client.sync()).isOk()).to.equal(true);
      const pushes = h.pushes();
      expect(pushes.map((p) => p.ids)).to.deep.equal([['a', 'b'], ['c', 'd'], ['e']]);
      expect(new Set(pushes.map((p) => p.push_id)).size).to.equal(3);
    });

    it('reuses the push_id when the same batch is retried after a failure, and takes a new one for a different batch', async () => {
      await open();
      await h.client.local.create('ideas', { id: 'i1', text: 'x' });
      h.transport.failNext(1, networkFailure('connection reset'), { kind: 'push' });
      expect((await h.client.sync()).isErr()).to.equal(true);
      expect((await h.client.sync()).isOk()).to.equal(true);
      await h.client.local.update('ideas', 'i1', { text: 'y' });
      expect((await h.client.sync()).isOk()).to.equal(true);
      const [failed, retried, next] = h.pushes();
      expect(retried!.push_id).to.equal(failed!.push_id);
      expect(next!.push_id).not.to.equal(failed!.push_id);
    });

    it('retries a batch whose answer was lost with the same push_id, so the server does not apply it twice', async () => {
      await open();
      await h.client.local.create('ideas', { id: 'i1', text: 'x' });
      h.transport.failNext(1, timeoutFailure('the server did not answer in time'), { kind: 'push', afterServer: true });
      expect((await h.client.sync()).isErr()).to.equal(true);
      const stampAfterFirst = h.server.store.snapshot(USER).lastStamp;
      expect((await h.client.sync()).isOk()).to.equal(true);
      const [lost, retried] = h.pushes();
      expect(retried!.push_id, 'a new push_id for the same batch').to.equal(lost!.push_id);
      expect(h.server.store.snapshot(USER).lastStamp, 'the server wrote the batch again').to.equal(stampAfterFirst);
      expect(h.client.getStatus().pending).to.equal(0);
    });
  });

  describe('refused batches', () => {
    it('splits a batch the server finds too large (413) until the pieces fit', async () => {
      await open({ server: createInProcessServer({ settings: { maxPushRecords: 3 } }), client: { batchSize: 8 } });
      const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
      for (const id of ids) await h.client.local.create('ideas', { id, text: id });
      const result = await h.client.sync();
      expect(result.isOk() && result.value.tables['ideas']).to.deep.equal({ pulled: 0, pushed: 8, conflicts: 0, quarantined: 0 });
      expect(h.pushes().map((p) => p.records)).to.deep.equal([8, 4, 2, 2, 4, 2, 2]);
      expect(h.serverIds('ideas')).to.deep.equal(ids);
      expect(h.client.getStatus()).to.include({ pending: 0, quarantined: 0 });
    });

    it('quarantines the records a 400 names and pushes the rest of the batch', async () => {
      await open({ server: createInProcessServer({ settings: { maxRecordBytes: 400 } }) });
      await h.client.local.create('captures', { id: 'ok1', type: 'text', raw_content: 'fine' });
      await h.client.local.create('captures', { id: 'huge', type: 'text', raw_content: 'x'.repeat(1000) });
      await h.client.local.create('captures', { id: 'ok2', type: 'text', raw_content: 'also fine' });
      const result = await h.client.sync();
      expect(result.isOk() && result.value.tables['captures']).to.include({ pushed: 2, quarantined: 1 });
      expect(h.serverIds('captures')).to.deep.equal(['ok1', 'ok2']);
      const quarantined = await h.client.listQuarantined();
      expect(quarantined.map((q) => [q.table, q.id])).to.deep.equal([['captures', 'huge']]);
      expect(quarantined[0]!.reason).to.match(/over the limit/);
      expect(h.client.getStatus()).to.include({ state: 'idle', pending: 0, quarantined: 1 });
    });

    it('sets nothing aside when a 400 names none of the batch\'s records, and reports the failure', async () => {
      await open();
      await h.client.local.create('ideas', { id: 'i1', text: 'fine' });
      h.transport.failNext(1, { kind: 'SERVER_ERROR', retryable: false, message: 'X-Device-Id is invalid', status: 400, details: [{ column: 'X-Device-Id', reason: 'invalid' }] }, { kind: 'push' });
      const result = await h.client.sync();
      expect(result.isErr() && result.error.message).to.equal('X-Device-Id is invalid');
      expect(await h.client.listQuarantined()).to.deep.equal([]);
      expect(h.client.getStatus()).to.include({ state: 'error', pending: 1, quarantined: 0 });
      expect((await h.client.sync()).isOk()).to.equal(true);
      expect(h.serverIds('ideas')).to.deep.equal(['i1']);
    });

    it('quarantines a single record too large to send (413) instead of retrying it forever', async () => {
      await open({ server: createInProcessServer({ settings: { maxPushRecords: 1 } }), client: { batchSize: 1 } });
      await h.client.local.create('ideas', { id: 'i1', text: 'fine' });
      h.transport.failNext(1, { kind: 'SERVER_ERROR', retryable: false, message: 'The body is over the limit', status: 413 }, { kind: 'push' });
      const result = await h.client.sync();
      expect(result.isOk() && result.value.tables['ideas']).to.include({ pushed: 0, quarantined: 1 });
      expect((await h.client.listQuarantined()).map((q) => [q.id, q.reason])).to.deep.equal([['i1', 'The body is over the limit']]);
    });
  });
});
