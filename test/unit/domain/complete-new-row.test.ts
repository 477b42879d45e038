import { expect } from 'chai';
import { completeNewRow, TABLES, tableSpec, type PushedRecord, type TableSpec } from '../../../src/domain';

/** completeNewRow: the row a pushed record creates (docs/protocol.md, "Partial records"). */

const record = (id: string, values: PushedRecord['values']): PushedRecord => ({ id, values, changed: null });
const table = (name: string): TableSpec => tableSpec(name)!;

const REQUIRED: Record<string, string[]> = {
  captures: ['type', 'raw_content'],
  todos: ['description'],
  thoughts: ['capture_id', 'summary'],
  ideas: ['text'],
  projects: ['name'],
};

describe('completeNewRow', () => {
  it('knows the required columns of every table', () => {
    expect(TABLES.map((t) => t.name)).to.have.members(Object.keys(REQUIRED));
  });

  for (const t of TABLES) {
    it(`${t.name}: reports each missing required column with table, id and column`, () => {
      const missing = completeNewRow(t, record('r1', {}), 1000)._unsafeUnwrapErr();
      expect(missing).to.deep.equal(REQUIRED[t.name]!.map((column) => ({ table: t.name, id: 'r1', column, reason: 'required when the record is created' })));
    });
  }

  it('fills the schema defaults and nulls, and created_at from the server clock', () => {
    expect(completeNewRow(table('captures'), record('c1', { type: 'text', raw_content: 'hello' }), 1000)._unsafeUnwrap()).to.deep.equal({
      created_at: 1000,
      type: 'text',
      raw_content: 'hello',
      normalized_text: null,
      state: 'captured',
      tags: '[]',
      project_id: null,
      duration_ms: null,
    });
    expect(completeNewRow(table('todos'), record('t1', { description: 'd' }), 1000)._unsafeUnwrap()).to.include({ state: 'todo', priority: 'medium', deadline: null });
    expect(completeNewRow(table('projects'), record('p1', { name: 'n' }), 1000)._unsafeUnwrap()).to.include({ archived: false, color: null });
  });

  it('keeps the values the record carries, including falsy ones and its created_at', () => {
    const row = completeNewRow(table('projects'), record('p1', { name: '', archived: true, color: null, created_at: 0 }), 1000)._unsafeUnwrap();
    expect(row).to.deep.equal({ created_at: 0, name: '', color: null, archived: true });
  });

  it('does not take a default from the prototype chain', () => {
    const row = completeNewRow(table('ideas'), record('i1', JSON.parse('{"text": "t", "__proto__": {"thought_id": "x"}}')), 1)._unsafeUnwrap();
    expect(row['thought_id']).to.equal(null);
  });
});
