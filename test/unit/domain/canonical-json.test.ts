import { expect } from 'chai';
import { canonicalJson } from '../../../src/domain';

/** canonicalJson: "the same body" of a replayed push means the same JSON value (docs/protocol.md). */
describe('canonicalJson', () => {
  it('does not depend on key order, at any depth', () => {
    const a = { push_id: 'p', changes: { todos: { created: [{ id: 't1', state: 'done' }], deleted: [] } }, last_pulled_at: 5 };
    const b = JSON.parse('{"last_pulled_at":5,"changes":{"todos":{"deleted":[],"created":[{"state":"done","id":"t1"}]}},"push_id":"p"}');
    expect(canonicalJson(a)).to.equal(canonicalJson(b));
  });

  it('is valid JSON of the same value, with sorted keys', () => {
    const value = { b: [3, { d: null, c: 'x"y' }], a: true, 'é': -0.5 };
    const text = canonicalJson(value);
    expect(text).to.equal('{"a":true,"b":[3,{"c":"x\\"y","d":null}],"é":-0.5}');
    expect(JSON.parse(text)).to.deep.equal(value);
  });

  it('tells different values apart', () => {
    const differ: Array<[unknown, unknown]> = [
      [{ a: 1 }, { a: '1' }],
      [{ a: [1, 2] }, { a: [2, 1] }],
      [{ a: null }, {}],
      [{ a: { b: 1 } }, { 'a.b': 1 }],
      [['a,b'], ['a', 'b']],
      [{ a: false }, { a: 0 }],
    ];
    for (const [x, y] of differ) expect(canonicalJson(x), JSON.stringify([x, y])).to.not.equal(canonicalJson(y));
  });

  it('leaves out undefined properties, as JSON does', () => {
    expect(canonicalJson({ a: 1, b: undefined })).to.equal(canonicalJson({ a: 1 }));
  });

  it('keeps an own __proto__ key of a parsed body', () => {
    expect(canonicalJson(JSON.parse('{"__proto__": {"x": 1}}'))).to.equal('{"__proto__":{"x":1}}');
  });
});
