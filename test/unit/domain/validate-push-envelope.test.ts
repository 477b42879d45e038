import { expect } from 'chai';
import { validatePush, type ErrorDetail, type PushLimits } from '../../../src/domain';

/**
 * validatePush, the push as a whole (spec §4.2): which tables it may name, how many records it
 * may carry, ids that appear twice, records that name another user, and the envelope itself.
 */

const LIMITS: PushLimits = { maxRecords: 1000, maxRecordBytes: 64 * 1024 };
const idea = (id: string, extra: Record<string, unknown> = {}) => ({ id, text: `idea ${id}`, ...extra });

describe('validatePush: tables, counts and the envelope', () => {
  for (const name of ['users', 'captures; DROP TABLE captures; --', "todos' OR '1'='1", 'sync_users', 'Captures', 'constructor', 'hasOwnProperty']) {
    it(`refuses the unknown table ${JSON.stringify(name)}, naming it`, () => {
      const error = validatePush({ changes: { [name]: { created: [idea('i1')] } } }, 'u1', LIMITS)._unsafeUnwrapErr();
      expect(error.code).to.equal('VALIDATION_FAILED');
      expect(error.details).to.deep.equal([{ table: name, reason: 'unknown table' }]);
    });
  }

  it('refuses __proto__ as a table (an own key of a parsed JSON body), without touching the prototype', () => {
    const body = JSON.parse('{"changes": {"__proto__": {"created": [{"id": "x", "text": "t"}]}, "ideas": {"created": [{"id": "i1", "text": "ok"}]}}}');
    const error = validatePush(body, 'u1', LIMITS)._unsafeUnwrapErr();
    expect(error.code).to.equal('VALIDATION_FAILED');
    expect(error.details).to.deep.equal([{ table: '__proto__', reason: 'unknown table' }]);
    expect(({} as Record<string, unknown>)['created']).to.equal(undefined);
  });

  it('accepts a valid push and returns its tables in sync priority order, with the record count', () => {
    const push = validatePush(
      {
        last_pulled_at: 1234,
        push_id: 'p-1',
        changes: { projects: { deleted: ['p9'] }, ideas: { created: [idea('i1')], updated: [idea('i2')] }, captures: { created: [{ id: 'c1', type: 'text', raw_content: 'x' }] } },
      },
      'u1',
      LIMITS,
    )._unsafeUnwrap();
    expect(push.lastPulledAt).to.equal(1234);
    expect(push.pushId).to.equal('p-1');
    expect(push.recordCount).to.equal(4);
    expect(push.tables.map((t) => t.table.name)).to.deep.equal(['captures', 'ideas', 'projects']);
    expect(push.tables[1]!.upserts.map((r) => r.id)).to.deep.equal(['i1', 'i2']);
    expect(push.tables[2]!.deletes).to.deep.equal(['p9']);
  });

  it('reads an absent or null last_pulled_at and push_id as null', () => {
    const a = validatePush({ changes: {} }, 'u1', LIMITS)._unsafeUnwrap();
    const b = validatePush({ changes: {}, last_pulled_at: null, push_id: null }, 'u1', LIMITS)._unsafeUnwrap();
    for (const push of [a, b]) expect([push.lastPulledAt, push.pushId, push.recordCount]).to.deep.equal([null, null, 0]);
  });

  describe('the envelope', () => {
    const cases: Array<[string, unknown, string]> = [
      ['a body that is not an object', [1, 2], ''],
      ['a body without changes', { last_pulled_at: 1 }, 'changes'],
      ['changes that is an array', { changes: [] }, 'changes'],
      ['a negative last_pulled_at', { changes: {}, last_pulled_at: -1 }, 'last_pulled_at'],
      ['a fractional last_pulled_at', { changes: {}, last_pulled_at: 1.5 }, 'last_pulled_at'],
      ['an empty push_id', { changes: {}, push_id: '' }, 'push_id'],
    ];
    for (const [what, body, column] of cases) {
      it(`refuses ${what}`, () => {
        const error = validatePush(body, 'u1', LIMITS)._unsafeUnwrapErr();
        expect(error.code).to.equal('VALIDATION_FAILED');
        const details = error.details as readonly ErrorDetail[];
        expect(details.length).to.be.greaterThan(0);
        if (column) expect(details.map((d) => d.column)).to.include(column);
      });
    }

    it('refuses an unknown key in the body', () => {
      const error = validatePush({ changes: {}, lastPulledAt: 5 }, 'u1', LIMITS)._unsafeUnwrapErr();
      expect(error.code).to.equal('VALIDATION_FAILED');
    });

    it('refuses a table entry that is not {created, updated, deleted}, naming the table', () => {
      for (const entry of [null, [], { created: {} }, { inserted: [] }]) {
        const error = validatePush({ changes: { ideas: entry } }, 'u1', LIMITS)._unsafeUnwrapErr();
        expect(error.code, JSON.stringify(entry)).to.equal('VALIDATION_FAILED');
        expect((error.details as readonly ErrorDetail[])[0]).to.include({ table: 'ideas' });
      }
    });
  });

  describe('record count', () => {
    const ideas = (n: number) => Array.from({ length: n }, (_, i) => idea(`i${i}`));

    it('accepts exactly the maximum, counting deleted ids', () => {
      const push = validatePush({ changes: { ideas: { created: ideas(3), deleted: ['d1', 'd2'] } } }, 'u1', { ...LIMITS, maxRecords: 5 });
      expect(push._unsafeUnwrap().recordCount).to.equal(5);
    });

    it('answers PAYLOAD_TOO_LARGE over the maximum, across tables, with the limit and the count', () => {
      const error = validatePush(
        { changes: { ideas: { created: ideas(3) }, todos: { deleted: ['t1', 't2', 't3'] } } },
        'u1',
        { ...LIMITS, maxRecords: 5 },
      )._unsafeUnwrapErr();
      expect(error.code).to.equal('PAYLOAD_TOO_LARGE');
      expect(error.details).to.deep.equal({ max_records: 5, records: 6 });
    });
  });

  describe('ids', () => {
    it('refuses an id twice in one table, across created, updated and deleted', () => {
      for (const changes of [
        { ideas: { created: [idea('i1'), idea('i1')] } },
        { ideas: { created: [idea('i1')], updated: [idea('i1')] } },
        { ideas: { updated: [idea('i1')], deleted: ['i1'] } },
        { ideas: { deleted: ['i1', 'i1'] } },
      ]) {
        const error = validatePush({ changes }, 'u1', LIMITS)._unsafeUnwrapErr();
        expect(error.code, JSON.stringify(changes)).to.equal('VALIDATION_FAILED');
        expect(error.details).to.deep.equal([{ table: 'ideas', id: 'i1', reason: 'the same id appears more than once in this push' }]);
      }
    });

    it('accepts the same id in two different tables', () => {
      const push = validatePush({ changes: { ideas: { created: [idea('x1')] }, projects: { created: [{ id: 'x1', name: 'n' }] } } }, 'u1', LIMITS);
      expect(push._unsafeUnwrap().recordCount).to.equal(2);
    });

    for (const [what, id] of [['empty', ''], ['129 characters long', 'a'.repeat(129)], ['with a control character', 'a\nb'], ['a number', 42], ['missing', undefined]] as const) {
      it(`refuses an id that is ${what}`, () => {
        const record = id === undefined ? { text: 't' } : { id, text: 't' };
        const error = validatePush({ changes: { ideas: { created: [record], deleted: [id ?? null] } } }, 'u1', LIMITS)._unsafeUnwrapErr();
        expect(error.code).to.equal('VALIDATION_FAILED');
        const details = error.details as readonly ErrorDetail[];
        expect(details).to.have.length(2);
        for (const d of details) expect(d).to.include({ table: 'ideas', column: 'id' });
      });
    }

    it('accepts an id of 128 characters', () => {
      const push = validatePush({ changes: { ideas: { created: [idea('a'.repeat(128))] } } }, 'u1', LIMITS)._unsafeUnwrap();
      expect(push.tables[0]!.upserts[0]!.id).to.have.length(128);
    });

    it('refuses a record that is not an object', () => {
      const error = validatePush({ changes: { ideas: { created: ['i1'] } } }, 'u1', LIMITS)._unsafeUnwrapErr();
      expect(error.details).to.deep.equal([{ table: 'ideas', reason: 'record must be an object' }]);
    });
  });

  describe('user_id', () => {
    it('answers FORBIDDEN when a record names another user, even among invalid records', () => {
      const error = validatePush(
        { changes: { ideas: { created: [idea('i1', { user_id: 'mallory' }), idea('i2', { bogus: 1 })] } } },
        'u1',
        LIMITS,
      )._unsafeUnwrapErr();
      expect(error.code).to.equal('FORBIDDEN');
      expect(error.details).to.deep.equal([{ table: 'ideas', id: 'i1', column: 'user_id', reason: "user_id is not the caller's" }]);
    });

    it('refuses a user_id that is not a string (a deeply nested array) as invalid, not a crash', () => {
      let deep: unknown = 'u1';
      for (let i = 0; i < 10_000; i++) deep = [deep];
      const error = validatePush({ changes: { ideas: { created: [idea('i1', { user_id: deep })] } } }, 'u1', LIMITS)._unsafeUnwrapErr();
      expect(error.code).to.equal('VALIDATION_FAILED');
      expect(error.details).to.deep.equal([{ table: 'ideas', id: 'i1', column: 'user_id', reason: "must be a string (the caller's own user id)" }]);
    });

    it('treats a null user_id as naming someone else', () => {
      expect(validatePush({ changes: { ideas: { created: [idea('i1', { user_id: null })] } } }, 'u1', LIMITS)._unsafeUnwrapErr().code).to.equal('FORBIDDEN');
    });

    it("accepts the caller's own user_id and does not keep it as a value", () => {
      const push = validatePush({ changes: { ideas: { created: [idea('i1', { user_id: 'u1' })] } } }, 'u1', LIMITS)._unsafeUnwrap();
      expect(push.tables[0]!.upserts[0]!.values).to.deep.equal({ text: 'idea i1' });
    });
  });
});
