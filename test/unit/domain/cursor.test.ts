import { expect } from 'chai';
import { classifyRows, MIN_CURSOR, nextCursor, TABLES, tableSpec, type PulledRow } from '../../../src/domain';

/** The pull cursor and WatermelonDB's created/updated/deleted buckets (spec §3, §4.1). */

const row = (table: string, id: string, firstWrittenAt: number, lastModifiedAt: number, deleted = false, firstWrittenBy: string | null = null): PulledRow => ({
  table,
  values: { id, last_modified_at: lastModifiedAt },
  deleted,
  lastModifiedAt,
  firstWrittenBy,
  firstWrittenAt,
});

describe('nextCursor', () => {
  it('gives an account without rows a positive cursor', () => {
    expect(MIN_CURSOR).to.equal(1);
    expect(nextCursor(null, [], false, 0)).to.equal(1);
  });

  it("returns the snapshot's high-water mark when the page is complete", () => {
    expect(nextCursor(100, [row('ideas', 'a', 150, 150)], false, 180)).to.equal(180);
  });

  it('never moves backwards from since', () => {
    expect(nextCursor(500, [], false, 300)).to.equal(500);
  });

  it("resumes right after the last row of a cut page, not at the high-water mark", () => {
    const page = [row('ideas', 'a', 150, 150), row('todos', 'b', 120, 160)];
    expect(nextCursor(100, page, true, 900)).to.equal(160);
  });
});

describe('classifyRows', () => {
  const requested = [tableSpec('captures')!, tableSpec('ideas')!];

  it('lists every requested table with all three arrays, even when empty, and only those', () => {
    expect(classifyRows(requested, [], 100, new Set())).to.deep.equal({
      captures: { created: [], updated: [], deleted: [] },
      ideas: { created: [], updated: [], deleted: [] },
    });
    expect(Object.keys(classifyRows(TABLES, [], null, new Set()))).to.deep.equal(['captures', 'todos', 'thoughts', 'ideas', 'projects']);
  });

  it('sorts rows after a cursor by their first write: created after it, updated otherwise, deleted as ids', () => {
    const changes = classifyRows(
      requested,
      [row('ideas', 'new', 150, 150), row('ideas', 'old', 40, 160), row('ideas', 'edge', 100, 170), row('ideas', 'gone', 50, 180, true), row('captures', 'c', 101, 190)],
      100,
      new Set(),
    );
    expect(changes['ideas']!.created.map((r) => r['id'])).to.deep.equal(['new']);
    expect(changes['ideas']!.updated.map((r) => r['id'])).to.deep.equal(['old', 'edge']);
    expect(changes['ideas']!.deleted).to.deep.equal(['gone']);
    expect(changes['captures']!.created.map((r) => r['id'])).to.deep.equal(['c']);
  });

  it('sends a row created and deleted after the cursor as a delete only', () => {
    const changes = classifyRows(requested, [row('ideas', 'brief', 150, 160, true)], 100, new Set());
    expect(changes['ideas']).to.deep.equal({ created: [], updated: [], deleted: ['brief'] });
  });

  it('a first sync sends every row as created and no deletes', () => {
    const changes = classifyRows(requested, [row('ideas', 'a', 10, 90), row('ideas', 'b', 20, 30, true)], null, new Set());
    expect(changes['ideas']).to.deep.equal({ created: [{ id: 'a', last_modified_at: 90 }], updated: [], deleted: [] });
  });

  it('treats a full (migration) table as a first sync while the others stay incremental', () => {
    const changes = classifyRows(
      requested,
      [row('ideas', 'old', 10, 20), row('ideas', 'gone', 10, 30, true), row('captures', 'old', 10, 150), row('captures', 'gone', 10, 160, true)],
      100,
      new Set(['ideas']),
    );
    expect(changes['ideas']).to.deep.equal({ created: [{ id: 'old', last_modified_at: 20 }], updated: [], deleted: [] });
    expect(changes['captures']).to.deep.equal({ created: [], updated: [{ id: 'old', last_modified_at: 150 }], deleted: ['gone'] });
  });

  it('drops rows of tables that were not requested', () => {
    const changes = classifyRows(requested, [row('todos', 't', 150, 150)], 100, new Set());
    expect(changes).to.not.have.property('todos');
    expect(Object.values(changes).flatMap((c) => [...c.created, ...c.updated, ...c.deleted])).to.deep.equal([]);
  });

  it('tells a device that created a row itself that it is updated, on an incremental pull only', () => {
    const rows = [row('ideas', 'mine', 150, 170, false, 'phone'), row('ideas', 'theirs', 150, 180, false, 'laptop')];
    expect(classifyRows(requested, rows, 100, new Set(), 'phone')['ideas']).to.deep.equal({
      created: [{ id: 'theirs', last_modified_at: 180 }],
      updated: [{ id: 'mine', last_modified_at: 170 }],
      deleted: [],
    });
    // A first sync: the device has nothing, so everything is created.
    expect(classifyRows(requested, rows, null, new Set(), 'phone')['ideas']!.created).to.have.length(2);
  });
});
