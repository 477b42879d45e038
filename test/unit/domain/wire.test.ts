import { expect } from 'chai';
import { pullResponseSchema } from '../../../src/domain';

/** What a client accepts as a pulled page (src/domain/wire.ts). Bad shapes tried: see each case. */
describe('pullResponseSchema', () => {
  const page = (record: unknown) => ({ changes: { todos: { created: [record], updated: [], deleted: [] } }, timestamp: 5, has_more: false });

  it('accepts records of strings, numbers, booleans and nulls, and passes them through unchanged', () => {
    const record = { id: 't1', description: 'd', deadline: 3, archived: false, completed_at: null };
    const parsed = pullResponseSchema.safeParse(page(record));
    expect(parsed.success && parsed.data.changes['todos']!.created[0]).to.equal(record);
  });

  const bad: Array<[string, unknown]> = [
    ['a record without an id', { description: 'd' }],
    ['a numeric id', { id: 7 }],
    ['a nested object value', { id: 't1', description: { text: 'd' } }],
    ['an array value', { id: 't1', tags: ['a'] }],
    ['an array as the record', ['t1']],
    ['null as the record', null],
    ['a string as the record', 't1'],
  ];
  for (const [what, record] of bad) {
    it(`refuses ${what}`, () => {
      expect(pullResponseSchema.safeParse(page(record)).success).to.equal(false);
    });
  }

  it('refuses a page without a positive timestamp, or with a deleted id that is not a string', () => {
    expect(pullResponseSchema.safeParse({ ...page({ id: 't1' }), timestamp: 0 }).success).to.equal(false);
    expect(pullResponseSchema.safeParse({ changes: { todos: { created: [], updated: [], deleted: [3] } }, timestamp: 5 }).success).to.equal(false);
  });
});
