import { expect } from 'chai';
import { brotliCompressSync, brotliDecompress, gunzip, gzipSync } from 'node:zlib';
import { inflate, type Inflate } from '../../../../src/adapters/http/body';

/**
 * A compression bomb never grows past the body limit in memory: the inflater is asked to stop at
 * the limit, so the largest buffer it hands back is the limit plus one byte (that byte tells "over
 * the limit"). Checked on what the real zlib produces, not by sampling the process's memory.
 */
describe('inflating a request body', () => {
  const LIMIT = 64 * 1024;
  const bomb = Buffer.alloc(64 * 1024 * 1024, 'a');

  for (const [name, real, compress] of [
    ['gzip', gunzip as Inflate, gzipSync],
    ['br', brotliDecompress as Inflate, brotliCompressSync],
  ] as const) {
    it(`${name}: a bomb of 64 MB stops at the limit, and is refused as too large`, async () => {
      let largest = 0;
      const watched: Inflate = (buf, options, cb) => real(buf, options, (e, out) => ((largest = Math.max(largest, out?.length ?? 0)), cb(e, out)));
      const result = await inflate(watched, compress(bomb), LIMIT);
      expect(result._unsafeUnwrapErr().code).to.equal('PAYLOAD_TOO_LARGE');
      expect(largest, 'the largest buffer zlib produced').to.be.at.most(LIMIT + 1);
    });

    it(`${name}: a body of exactly the limit inflates whole; one byte more is refused`, async () => {
      const exact = Buffer.alloc(LIMIT, 'b');
      expect((await inflate(real, compress(exact), LIMIT))._unsafeUnwrap().equals(exact)).to.equal(true);
      expect((await inflate(real, compress(Buffer.alloc(LIMIT + 1, 'b')), LIMIT))._unsafeUnwrapErr().code).to.equal('PAYLOAD_TOO_LARGE');
    });
  }
});
