import { expect } from 'chai';
import { TABLE_NAMES } from '../../../src/domain';
import { summary, syncFixture, START, type SyncFixture } from './sync-fixture';

/** PullChanges over the in-memory store (spec §4.1, §4.4): buckets, cursor, pages, echo suppression. */

const ideas = (...ids: string[]) => ids.map((id) => ({ id, text: `idea ${id}` }));

describe('PullChanges', () => {
  let sync: SyncFixture;
  beforeEach(() => {
    sync = syncFixture();
  });

  it('answers a user without rows with every table, empty, and a positive timestamp', async () => {
    const response = await sync.pull('ana', 'phone');
    expect(Object.keys(response.changes)).to.deep.equal([...TABLE_NAMES]);
    for (const changes of Object.values(response.changes)) expect(changes).to.deep.equal({ created: [], updated: [], deleted: [] });
    expect(response.timestamp).to.equal(1);
    expect(response.has_more).to.equal(false);
  });

  it('sends active rows as created on a first sync, and no deletes', async () => {
    await sync.push('ana', 'laptop', { changes: { ideas: { created: ideas('i1', 'i2', 'i3') } } });
    await sync.push('ana', 'laptop', { changes: { ideas: { deleted: ['i2'], updated: ideas('i3') } } });
    const response = await sync.pull('ana', 'phone', { last_pulled_at: 'null' });
    expect(summary(response)).to.deep.equal({ ideas: { created: ['i1', 'i3'] } });
    expect(response.changes['ideas']!.created[0]).to.deep.equal({ id: 'i1', thought_id: null, text: 'idea i1', created_at: START, last_modified_at: START });
    expect(response.timestamp).to.equal(START + 4);
  });

  it('after a cursor, sorts rows into created, updated and deleted by their first write', async () => {
    await sync.push('ana', 'laptop', { changes: { ideas: { created: ideas('old', 'gone') } } });
    const { timestamp } = await sync.pull('ana', 'phone');
    await sync.push('ana', 'laptop', { changes: { ideas: { created: ideas('new'), updated: ideas('old'), deleted: ['gone'] } } });
    const response = await sync.pull('ana', 'phone', { last_pulled_at: String(timestamp) });
    expect(summary(response)).to.deep.equal({ ideas: { created: ['new'], updated: ['old'], deleted: ['gone'] } });
    expect(response.timestamp).to.be.greaterThan(timestamp);
    expect(summary(await sync.pull('ana', 'phone', { last_pulled_at: String(response.timestamp) }))).to.deep.equal({});
  });

  it("never sends one user's rows to another", async () => {
    await sync.push('ana', 'laptop', { changes: { ideas: { created: ideas('secret') } } });
    expect(summary(await sync.pull('bob', 'phone'))).to.deep.equal({});
  });

  describe('echo suppression', () => {
    it("leaves out a device's own versions after its cursor; other devices get them", async () => {
      const { timestamp } = await sync.pull('ana', 'phone');
      await sync.push('ana', 'phone', { changes: { ideas: { created: ideas('mine') } } });
      await sync.push('ana', 'laptop', { changes: { ideas: { created: ideas('theirs') } } });
      const since = { last_pulled_at: String(timestamp) };
      expect(summary(await sync.pull('ana', 'phone', since))).to.deep.equal({ ideas: { created: ['theirs'] } });
      expect(summary(await sync.pull('ana', 'laptop', since))).to.deep.equal({ ideas: { created: ['mine'] } });
      expect(summary(await sync.pull('ana', null, since))).to.deep.equal({ ideas: { created: ['mine', 'theirs'] } });
    });

    it('sends everything on a first sync, the device having maybe lost its database', async () => {
      await sync.push('ana', 'phone', { changes: { ideas: { created: ideas('mine') } } });
      expect(summary(await sync.pull('ana', 'phone'))).to.deep.equal({ ideas: { created: ['mine'] } });
    });

    // The server cannot tell a first sync's continuation page from an incremental pull, so the
    // protocol has a client paging through a first sync leave out X-Device-Id (docs/protocol.md).
    it("sends the device's own rows on every page of a first sync paged without X-Device-Id", async () => {
      await sync.push('ana', 'phone', { changes: { ideas: { created: ideas('a', 'b', 'c', 'd', 'e') } } });
      const received: string[] = [];
      let cursor = 'null';
      for (let page = 0; page < 5; page++) {
        const response = await sync.pull('ana', page === 0 ? 'phone' : null, { last_pulled_at: cursor, limit: '2' });
        received.push(...response.changes['ideas']!.created.map((r) => r['id'] as string), ...response.changes['ideas']!.updated.map((r) => r['id'] as string));
        cursor = String(response.timestamp);
        if (!response.has_more) break;
      }
      expect(received).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    });
  });

  describe('pages', () => {
    beforeEach(async () => {
      for (const id of ['a', 'b', 'c', 'd', 'e']) await sync.push('ana', 'laptop', { changes: { ideas: { created: ideas(id) } } });
    });

    it('cuts at limit with has_more, and the timestamp resumes exactly after the last row', async () => {
      const seen: string[] = [];
      let cursor = 'null';
      for (let page = 0; page < 10; page++) {
        const response = await sync.pull('ana', 'phone', { last_pulled_at: cursor, limit: '2' });
        const ids = response.changes['ideas']!.created.map((r) => r['id'] as string);
        seen.push(...ids);
        cursor = String(response.timestamp);
        expect(response.has_more, `page ${page}`).to.equal(page < 2);
        if (!response.has_more) break;
        expect(ids).to.have.length(2);
      }
      expect(seen).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
      expect(Number(cursor)).to.equal(START + 4);
    });

    it('caps the limit at the configured maximum', async () => {
      sync = syncFixture({ pullLimit: 3 });
      await sync.push('ana', 'laptop', { changes: { ideas: { created: ideas('a', 'b', 'c', 'd') } } });
      const response = await sync.pull('ana', 'phone', { limit: '100' });
      expect(response.changes['ideas']!.created).to.have.length(3);
      expect(response.has_more).to.equal(true);
    });
  });

  it('answers only the requested tables', async () => {
    await sync.push('ana', 'laptop', { changes: { ideas: { created: ideas('i1') }, projects: { created: [{ id: 'p1', name: 'home' }] } } });
    const response = await sync.pull('ana', 'phone', { tables: 'projects,todos' });
    expect(Object.keys(response.changes)).to.deep.equal(['todos', 'projects']);
    expect(summary(response)).to.deep.equal({ projects: { created: ['p1'] } });
  });

  it("sends a migration's tables in full, as for a first sync", async () => {
    await sync.push('ana', 'laptop', { changes: { ideas: { created: ideas('i1', 'i2') }, projects: { created: [{ id: 'p1', name: 'home' }] } } });
    await sync.push('ana', 'laptop', { changes: { ideas: { deleted: ['i2'] } } });
    const { timestamp } = await sync.pull('ana', 'phone');
    const response = await sync.pull('ana', 'phone', { last_pulled_at: String(timestamp), migration: JSON.stringify({ from: 1, tables: ['ideas'] }) });
    expect(summary(response)).to.deep.equal({ ideas: { created: ['i1'] } });
  });

  it('answers SCHEMA_VERSION_UNSUPPORTED with {min, max} outside the supported range', async () => {
    sync = syncFixture({ schemaVersions: { min: 2, max: 3 } });
    for (const version of ['1', '4']) {
      const error = await sync.pullError('ana', 'phone', {}, version);
      expect(error.code).to.equal('SCHEMA_VERSION_UNSUPPORTED');
      expect(error.details).to.deep.equal({ min: 2, max: 3 });
    }
    expect((await sync.pull('ana', 'phone', {}, '2')).timestamp).to.equal(1);
  });

  it('answers VALIDATION_FAILED for a bad query', async () => {
    const error = await sync.pullError('ana', 'phone', { last_pulled_at: 'yesterday' });
    expect(error.code).to.equal('VALIDATION_FAILED');
    expect(error.details).to.deep.equal([{ column: 'last_pulled_at', reason: 'must be a non-negative integer (milliseconds) or null' }]);
  });
});
