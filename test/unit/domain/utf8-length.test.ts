import { expect } from 'chai';
import { utf8Length } from '../../../src/domain';

/** utf8Length counts what Buffer.byteLength counts, for the ASCII fast path and past it. */
describe('utf8Length', () => {
  it('equals the UTF-8 byte length of ASCII, two-, three- and four-byte text, wherever the first non-ASCII character is', () => {
    const samples = ['', 'a', 'plain ascii text {"json":[1,2]}', 'é', 'café', 'héllo 👋 wörld', '日本語のメモ', '👋', `${'x'.repeat(5000)}ü`, `ü${'x'.repeat(5000)}`, 'mixed: é 日 👋 end'];
    for (const s of samples) expect(utf8Length(s), JSON.stringify(s.slice(0, 20))).to.equal(Buffer.byteLength(s, 'utf8'));
  });

  it('counts a lone high surrogate at the end as the three bytes of its replacement', () => {
    expect(utf8Length('a\ud83d')).to.equal(Buffer.byteLength('a\ud83d', 'utf8'));
  });
});
