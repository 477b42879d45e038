import { expect } from 'chai';
import { TABLES, validatePush, type ErrorDetail, type PushLimits, type PushedRecord } from '../../../src/domain';

/**
 * validatePush, record by record (spec §4.2, docs/protocol.md): column names and value types
 * from the schema, WatermelonDB's local fields, `_changed`, the record size limit, and the shape
 * of the details a client uses to set records aside.
 */

const LIMITS: PushLimits = { maxRecords: 1000, maxRecordBytes: 64 * 1024 };

function validRecord(table: string, record: Record<string, unknown>, limits = LIMITS): PushedRecord {
  const push = validatePush({ changes: { [table]: { updated: [record] } } }, 'u1', limits)._unsafeUnwrap();
  return push.tables[0]!.upserts[0]!;
}

function invalid(table: string, record: Record<string, unknown>, limits = LIMITS): ErrorDetail[] {
  const error = validatePush({ changes: { [table]: { created: [record] } } }, 'u1', limits)._unsafeUnwrapErr();
  expect(error.code).to.equal('VALIDATION_FAILED');
  return error.details as ErrorDetail[];
}

describe('validatePush: records', () => {
  it('keeps the known columns and created_at as values, and nothing else', () => {
    const r = validRecord('captures', { id: 'c1', type: 'audio', raw_content: 'r', tags: '["a"]', duration_ms: 1200, project_id: null, created_at: 5 });
    expect(r).to.deep.equal({ id: 'c1', values: { type: 'audio', raw_content: 'r', tags: '["a"]', duration_ms: 1200, project_id: null, created_at: 5 }, changed: null });
  });

  it('refuses an unknown column, naming table, id and column', () => {
    expect(invalid('ideas', { id: 'i1', text: 't', colour: 'red' })).to.deep.equal([{ table: 'ideas', id: 'i1', column: 'colour', reason: 'unknown column' }]);
  });

  it('refuses a column of another table and names that are not own columns', () => {
    const record = JSON.parse('{"id": "i1", "text": "t", "raw_content": "x", "constructor": "x", "toString": "x", "__proto__": {"text": 1}}');
    const details = invalid('ideas', record);
    expect(details.map((d) => d.column)).to.have.members(['raw_content', 'constructor', 'toString', '__proto__']);
    for (const d of details) expect(d).to.include({ table: 'ideas', id: 'i1', reason: 'unknown column' });
  });

  describe('value types, per column type of the schema', () => {
    const wrong: Array<[string, string, unknown]> = [
      ['ideas', 'text', 42],
      ['ideas', 'text', null],
      ['ideas', 'text', true],
      ['ideas', 'thought_id', 7],
      ['captures', 'duration_ms', '1200'],
      ['captures', 'duration_ms', 1.5],
      ['captures', 'duration_ms', Number.MAX_SAFE_INTEGER + 2],
      ['todos', 'deadline', true],
      ['projects', 'archived', 'true'],
      ['projects', 'archived', 1],
      ['projects', 'archived', null],
      ['captures', 'type', 'video'],
      ['captures', 'state', 'CAPTURED'],
      ['todos', 'priority', 'urgent'],
      ['todos', 'state', null],
      ['captures', 'tags', '{"a": 1}'],
      ['captures', 'tags', 'a,b'],
      ['captures', 'tags', '"a"'],
      ['captures', 'tags', ['a']],
      ['captures', 'tags', null],
      ['ideas', 'created_at', -1],
      ['ideas', 'created_at', '2024-01-01'],
      ['ideas', 'created_at', null],
    ];
    for (const [table, column, value] of wrong) {
      it(`refuses ${table}.${column} = ${JSON.stringify(value)}`, () => {
        const details = invalid(table, { id: 'r1', [column]: value });
        expect(details).to.have.length(1);
        expect(details[0]).to.include({ table, id: 'r1', column });
        expect(details[0]!.reason).to.be.a('string').and.not.equal('');
      });
    }

    const right: Array<[string, string, unknown]> = [
      ['ideas', 'thought_id', null],
      ['captures', 'duration_ms', null],
      ['captures', 'duration_ms', 0],
      ['todos', 'deadline', 1736760000000],
      ['projects', 'archived', false],
      ['projects', 'color', null],
      ['captures', 'type', 'audio'],
      ['captures', 'state', 'failed'],
      ['todos', 'priority', 'high'],
      ['captures', 'tags', '[]'],
      ['captures', 'tags', '["a", {"b": 1}]'],
      ['captures', 'raw_content', ''],
    ];
    for (const [table, column, value] of right) {
      it(`accepts ${table}.${column} = ${JSON.stringify(value)}`, () => {
        expect(validRecord(table, { id: 'r1', [column]: value }).values[column]).to.deep.equal(value);
      });
    }

    it('accepts every enum value the schema lists', () => {
      for (const table of TABLES) {
        for (const [column, spec] of Object.entries(table.columns)) {
          for (const value of spec.enum ?? []) expect(validRecord(table.name, { id: 'r1', [column]: value }).values[column]).to.equal(value);
        }
      }
    });
  });

  it('reports every fault of every record, not only the first', () => {
    const error = validatePush(
      { changes: { todos: { created: [{ id: 't1', priority: 'urgent', deadline: 'soon' }], updated: [{ id: 't2', nope: 1 }] } } },
      'u1',
      LIMITS,
    )._unsafeUnwrapErr();
    expect((error.details as ErrorDetail[]).map((d) => [d.id, d.column])).to.deep.equal([
      ['t1', 'priority'],
      ['t1', 'deadline'],
      ['t2', 'nope'],
    ]);
  });

  it('gives details with only table, id, column and reason', () => {
    const error = validatePush(
      { changes: { ghosts: {}, ideas: { created: [{ id: 'i1', text: 1 }, 'x', { id: '' }], deleted: [''] } } },
      'u1',
      LIMITS,
    )._unsafeUnwrapErr();
    const details = error.details as ErrorDetail[];
    expect(details).to.have.length(5);
    for (const d of details) {
      expect(Object.keys(d)).to.satisfy((keys: string[]) => keys.every((k) => ['table', 'id', 'column', 'reason'].includes(k)), JSON.stringify(d));
      expect(d.reason).to.be.a('string');
    }
  });

  describe("WatermelonDB's local fields", () => {
    it('accepts _status and last_modified_at (number or null) and ignores them', () => {
      for (const extra of [{ _status: 'created', last_modified_at: null }, { _status: 'updated', last_modified_at: 1736760000000 }, { _status: 'synced' }]) {
        expect(validRecord('ideas', { id: 'i1', text: 't', ...extra }).values).to.deep.equal({ text: 't' });
      }
    });

    it('refuses them with the wrong type', () => {
      expect(invalid('ideas', { id: 'i1', _status: 5 })[0]).to.include({ table: 'ideas', id: 'i1', column: '_status' });
      expect(invalid('ideas', { id: 'i1', last_modified_at: 'yesterday' })[0]).to.include({ table: 'ideas', id: 'i1', column: 'last_modified_at' });
    });
  });

  describe('_changed', () => {
    it('is null when absent or empty: every pushed column counts', () => {
      expect(validRecord('todos', { id: 't1', state: 'done' }).changed).to.equal(null);
      expect(validRecord('todos', { id: 't1', state: 'done', _changed: '' }).changed).to.equal(null);
    });

    it("lists the named columns, trimmed, dropping names that are not the table's columns", () => {
      const r = validRecord('todos', { id: 't1', state: 'done', _changed: 'state, completed_at,created_at,raw_content,,__proto__' });
      expect(r.changed).to.deep.equal(['state', 'completed_at']);
      expect(r.values).to.deep.equal({ state: 'done' });
    });

    it('is an empty list when it names no known column', () => {
      expect(validRecord('todos', { id: 't1', _changed: 'bogus' }).changed).to.deep.equal([]);
    });

    it('refuses a _changed that is not a string', () => {
      expect(invalid('todos', { id: 't1', _changed: ['state'] })[0]).to.include({ table: 'todos', id: 't1', column: '_changed' });
    });
  });

  describe('record size', () => {
    it('refuses a record over maxRecordBytes, counting UTF-8 bytes', () => {
      const limits = { ...LIMITS, maxRecordBytes: 100 };
      const text = 'é'.repeat(40); // 80 bytes, 40 characters
      const details = invalid('ideas', { id: 'i1', text }, limits);
      expect(details).to.have.length(1);
      expect(details[0]).to.include({ table: 'ideas', id: 'i1' });
      expect(details[0]!.reason).to.match(/over the limit of 100/);
      expect(details[0]).to.not.have.property('column');
    });

    it('accepts a record at the limit', () => {
      const record = { id: 'i1', text: 'x' };
      const size = JSON.stringify(record).length;
      expect(validRecord('ideas', record, { ...LIMITS, maxRecordBytes: size }).values).to.deep.equal({ text: 'x' });
    });
  });
});
