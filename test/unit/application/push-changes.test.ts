import { expect } from 'chai';
import { summary, syncFixture, START, type SyncFixture } from './sync-fixture';

/** PushChanges over the in-memory store (spec §4.2–4.4): atomicity, push_id receipts, conflicts. */

const idea = (id: string, text = `idea ${id}`) => ({ id, text });
const HOUR = 60 * 60 * 1000;

describe('PushChanges', () => {
  let sync: SyncFixture;
  beforeEach(() => {
    sync = syncFixture();
  });

  it('creates rows with the schema defaults and answers the cursor after the push', async () => {
    const response = await sync.push('ana', 'phone', { changes: { todos: { created: [{ id: 't1', description: 'file taxes', created_at: 5 }] } } });
    const [row] = sync.everything('ana').rows;
    expect(row).to.deep.include({ table: 'todos', deleted: false, lastModifiedBy: 'phone', lastModifiedAt: START });
    expect(row!.values).to.deep.equal({ id: 't1', description: 'file taxes', thought_id: null, state: 'todo', priority: 'medium', deadline: null, completed_at: null, project_id: null, created_at: 5 });
    expect(response).to.deep.equal({ timestamp: START, conflicts: [] });
  });

  it("treats an update of a missing row as a create, a create of an existing row as an update, and a missing delete as a no-op", async () => {
    const first = await sync.push('ana', 'phone', { changes: { ideas: { updated: [idea('i1', 'v1')] } } });
    await sync.push('ana', 'phone', { last_pulled_at: first.timestamp, changes: { ideas: { created: [idea('i1', 'v2')], deleted: ['ghost'] } } });
    const { rows } = sync.everything('ana');
    expect(rows.map((r) => [r.values['id'], r.values['text'], r.deleted])).to.deep.equal([['i1', 'v2', false]]);
  });

  describe('atomicity', () => {
    it('refuses a create missing a required column with VALIDATION_FAILED and writes none of the push', async () => {
      await sync.push('ana', 'phone', { changes: { ideas: { created: [idea('i0')] } } });
      const before = sync.everything('ana');
      const error = await sync.pushError('ana', 'phone', {
        push_id: 'p1',
        changes: { captures: { created: [{ id: 'c1', type: 'text', raw_content: 'ok' }] }, todos: { created: [{ id: 't1', state: 'done' }] }, ideas: { updated: [idea('i0', 'edited')] } },
      });
      expect(error.code).to.equal('VALIDATION_FAILED');
      expect(error.details).to.deep.equal([{ table: 'todos', id: 't1', column: 'description', reason: 'required when the record is created' }]);
      expect(sync.everything('ana')).to.deep.equal(before);
    });

    it('keeps no receipt of a refused push, so the corrected batch goes through under the same push_id', async () => {
      await sync.pushError('ana', 'phone', { push_id: 'p1', changes: { todos: { created: [{ id: 't1' }] } } });
      const response = await sync.push('ana', 'phone', { push_id: 'p1', changes: { todos: { created: [{ id: 't1', description: 'd' }] } } });
      expect(response.timestamp).to.equal(START);
      expect(sync.everything('ana').rows).to.have.length(1);
    });

    for (const [what, body, code] of [
      ['an invalid record', { changes: { ideas: { created: [idea('i1'), { id: 'i2', text: 5 }] } } }, 'VALIDATION_FAILED'],
      ['a user_id of another user', { changes: { ideas: { created: [idea('i1'), { ...idea('i2'), user_id: 'bob' }] } } }, 'FORBIDDEN'],
      ['too many records', { changes: { ideas: { created: [idea('i1'), idea('i2'), idea('i3')] } } }, 'PAYLOAD_TOO_LARGE'],
    ] as const) {
      it(`answers ${code} for ${what} and writes nothing`, async () => {
        sync = syncFixture({ maxPushRecords: 2 });
        expect((await sync.pushError('ana', 'phone', body)).code).to.equal(code);
        expect(sync.everything('ana')).to.deep.equal(sync.store.snapshot('nobody'));
      });
    }

    it('answers SCHEMA_VERSION_UNSUPPORTED with {min, max} outside the range, and writes nothing', async () => {
      sync = syncFixture({ schemaVersions: { min: 2, max: 3 } });
      for (const version of ['1', '4']) {
        const error = await sync.pushError('ana', 'phone', { changes: { ideas: { created: [idea('i1')] } } }, version);
        expect(error.code).to.equal('SCHEMA_VERSION_UNSUPPORTED');
        expect(error.details).to.deep.equal({ min: 2, max: 3 });
      }
      expect(sync.everything('ana').rows).to.deep.equal([]);
      expect((await sync.push('ana', 'phone', { changes: { ideas: { created: [idea('i1')] } } }, '3')).conflicts).to.deep.equal([]);
    });
  });

  describe('push_id', () => {
    const body = { push_id: 'p1', last_pulled_at: null, changes: { ideas: { created: [idea('i1'), idea('i2')] } } };

    it('replays the first answer for the same body, in any key order, and writes nothing', async () => {
      const first = await sync.push('ana', 'phone', body);
      await sync.push('ana', 'laptop', { changes: { ideas: { created: [idea('i3')] } } });
      const before = sync.everything('ana');
      sync.clock.ms += 23 * HOUR;
      const replay = await sync.push('ana', 'phone', JSON.parse('{"changes":{"ideas":{"created":[{"text":"idea i1","id":"i1"},{"id":"i2","text":"idea i2"}]}},"last_pulled_at":null,"push_id":"p1"}'));
      expect(replay).to.deep.equal(first);
      expect(sync.everything('ana')).to.deep.equal(before);
    });

    it('applies a retry racing the first attempt only once', async () => {
      const [a, b] = await Promise.all([sync.push('ana', 'phone', body), sync.push('ana', 'phone', body)]);
      expect(a).to.deep.equal(b);
      expect(sync.everything('ana').rows.map((r) => r.lastModifiedAt)).to.deep.equal([START, START + 1]);
    });

    it('answers PUSH_ID_REUSED for a different body and writes nothing; the first answer still replays', async () => {
      const first = await sync.push('ana', 'phone', body);
      const before = sync.everything('ana');
      const error = await sync.pushError('ana', 'phone', { ...body, changes: { ideas: { created: [idea('i1', 'other text')] } } });
      expect(error.code).to.equal('PUSH_ID_REUSED');
      expect(sync.everything('ana')).to.deep.equal(before);
      expect(await sync.push('ana', 'phone', body)).to.deep.equal(first);
    });

    it('forgets a push_id after 24 hours: the same batch is applied again', async () => {
      await sync.push('ana', 'phone', body);
      sync.clock.ms += 24 * HOUR + 1;
      const again = await sync.push('ana', 'phone', body);
      expect(again.timestamp).to.equal(sync.clock.ms + 1);
      expect(sync.everything('ana').rows.map((r) => r.lastModifiedAt)).to.deep.equal([sync.clock.ms, sync.clock.ms + 1]);
    });

    it("keeps push_ids per user: another user's push under the same id is applied", async () => {
      await sync.push('ana', 'phone', body);
      await sync.push('bob', 'phone', { ...body, changes: { projects: { created: [{ id: 'p1', name: 'x' }] } } });
      expect(sync.everything('bob').rows.map((r) => r.table)).to.deep.equal(['projects']);
    });
  });

  describe('conflicts', () => {
    let cursor: number;
    beforeEach(async () => {
      await sync.push('ana', 'laptop', { changes: { captures: { created: [{ id: 'c1', type: 'audio', raw_content: 'memo.m4a' }] }, ideas: { created: [idea('i1'), idea('i2')] } } });
      cursor = (await sync.pull('ana', 'phone')).timestamp;
      sync.clock.ms += 1000;
      await sync.push('ana', 'laptop', {
        last_pulled_at: cursor,
        changes: { captures: { updated: [{ id: 'c1', state: 'ready', normalized_text: 'buy milk', tags: '["laptop"]' }] }, ideas: { updated: [idea('i1', 'laptop edit')], deleted: ['i2'] } },
      });
      sync.clock.ms += 1000;
    });

    it('lists them in the response and records them with the columns each side won', async () => {
      const response = await sync.push('ana', 'phone', {
        last_pulled_at: cursor,
        changes: {
          captures: { updated: [{ id: 'c1', state: 'failed', tags: '["phone"]', project_id: 'p1' }] },
          ideas: { updated: [idea('i2', 'edited offline')], deleted: ['i1'] },
        },
      });
      expect(response.conflicts).to.deep.equal([
        { table: 'captures', id: 'c1', type: 'update_update', resolution: 'per_column', client_columns: ['tags', 'project_id'], server_columns: ['state'] },
        { table: 'ideas', id: 'i2', type: 'update_delete', resolution: 'delete_wins', client_columns: [], server_columns: ['text'] },
        { table: 'ideas', id: 'i1', type: 'delete_update', resolution: 'delete_wins', client_columns: [], server_columns: [] },
      ]);
      const recorded = sync.store.conflictsOf('ana');
      expect(recorded.map((c) => [c.table, c.id, c.type, c.resolvedAt])).to.deep.equal([
        ['captures', 'c1', 'update_update', sync.clock.ms],
        ['ideas', 'i2', 'update_delete', sync.clock.ms],
        ['ideas', 'i1', 'delete_update', sync.clock.ms],
      ]);
      expect(recorded[0]!.clientColumns).to.have.members(['tags', 'project_id']);
      expect(recorded[0]!.serverColumns).to.deep.equal(['state']);
      const rows = new Map(sync.everything('ana').rows.map((r) => [r.values['id'], r]));
      expect(rows.get('c1')!.values).to.include({ state: 'ready', normalized_text: 'buy milk', tags: '["phone"]', project_id: 'p1' });
      expect(rows.get('i1')!.deleted).to.equal(true);
      expect(rows.get('i2')).to.deep.include({ deleted: true });
      expect(rows.get('i2')!.values['text']).to.equal('idea i2');
    });

    it('sends the merged rows back to the pusher, though it suppresses its own versions', async () => {
      await sync.push('ana', 'phone', {
        last_pulled_at: cursor,
        changes: { captures: { updated: [{ id: 'c1', tags: '["phone"]' }] }, ideas: { updated: [idea('i2', 'edited offline')], created: [idea('mine')] } },
      });
      const pulled = await sync.pull('ana', 'phone', { last_pulled_at: String(cursor) });
      expect(summary(pulled)).to.deep.equal({ captures: { updated: ['c1'] }, ideas: { updated: ['i1'], deleted: ['i2'] } });
      expect(pulled.changes['captures']!.updated[0]).to.include({ state: 'ready', tags: '["phone"]' });
    });

    it("does not treat the pusher's own unpulled version as a conflict", async () => {
      const own = await sync.push('ana', 'phone', { last_pulled_at: cursor, changes: { ideas: { created: [idea('i3', 'v1')] } } });
      const again = await sync.push('ana', 'phone', { last_pulled_at: cursor, changes: { ideas: { updated: [idea('i3', 'v2')] } } });
      expect([own.conflicts, again.conflicts]).to.deep.equal([[], []]);
      expect(sync.store.conflictsOf('ana')).to.deep.equal([]);
    });

    it('applies every pushed value when the client pulled after the server change', async () => {
      const fresh = (await sync.pull('ana', 'phone', { last_pulled_at: String(cursor) })).timestamp;
      const response = await sync.push('ana', 'phone', { last_pulled_at: fresh, changes: { captures: { updated: [{ id: 'c1', state: 'failed' }] } } });
      expect(response.conflicts).to.deep.equal([]);
      expect(sync.everything('ana').rows.find((r) => r.values['id'] === 'c1')!.values['state']).to.equal('failed');
    });
  });
});
