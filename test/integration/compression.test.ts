import { expect } from 'chai';
import { request } from 'node:http';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { describeEachDatabase } from '../support/databases';
import { snapshotAll, startTestServer, type TestServer } from '../support/server';

/**
 * Compressed payloads both ways (a phone's metered link): pulls are compressed when the client
 * accepts it, pushes may arrive gzip- or brotli-compressed, and the body limit holds after
 * decompression, without ever inflating past it (a decompression bomb is a 413).
 */

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function raw(url: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer }): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const ideas = (n: number, prefix = 'i') => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, text: `a thought about compression, number ${i}` }));

describeEachDatabase('compressed payloads', (ctx) => {
  let server: TestServer;
  let token: string;
  before(async () => {
    server = await startTestServer(ctx.database.db, { SYNC_MAX_BODY_BYTES: String(1024 * 1024) });
    token = server.token('zip');
  });
  after(() => server.close());

  const pullUrl = () => `${server.url}/api/sync/pull?last_pulled_at=0&tables=ideas`;
  const push = (body: Buffer, encoding?: string) =>
    raw(`${server.url}/api/sync/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(encoding ? { 'content-encoding': encoding } : {}) },
      body,
    });

  it('compresses a large pull with brotli or gzip as the client accepts, and not at all when it accepts neither', async () => {
    expect((await server.client('zip').push({ changes: { ideas: { created: ideas(300) } } })).status).to.equal(200);
    const plain = await raw(pullUrl(), { headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'identity' } });
    expect(plain.headers['content-encoding']).to.equal(undefined);
    const expected = JSON.parse(plain.body.toString());
    expect(expected.changes.ideas.created).to.have.length(300);

    const gz = await raw(pullUrl(), { headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).to.equal('gzip');
    expect(JSON.parse(gunzipSync(gz.body).toString())).to.deep.equal(expected);

    const br = await raw(pullUrl(), { headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip, br' } });
    expect(br.headers['content-encoding']).to.equal('br');
    expect(JSON.parse(brotliDecompressSync(br.body).toString())).to.deep.equal(expected);
    expect(br.body.length).to.be.below(plain.body.length / 4);
  });

  it('leaves a small answer uncompressed (below HTTP_COMPRESS_ABOVE_BYTES)', async () => {
    const small = await raw(`${server.url}/healthz`, { headers: { 'accept-encoding': 'gzip, br' } });
    expect(small.headers['content-encoding']).to.equal(undefined);
    expect(JSON.parse(small.body.toString())).to.deep.equal({ status: 'ok' });
  });

  for (const [encoding, compress] of [
    ['gzip', gzipSync],
    ['br', brotliCompressSync],
  ] as const) {
    it(`accepts a ${encoding}-compressed push`, async () => {
      const answer = await push(compress(Buffer.from(JSON.stringify({ changes: { ideas: { created: ideas(50, encoding) } } }))), encoding);
      expect(answer.status, answer.body.toString()).to.equal(200);
      expect(await ctx.database.db('ideas').where({ user_id: 'zip' }).pluck('id')).to.have.length(50);
    });

    // Issue 20, item 14: the limit after inflating, at its boundary. Dropping the length check
    // after inflating (zlib is allowed one byte past the limit, to tell "at" from "over") made
    // the second of these answer 200, and no other test noticed.
    it(`a ${encoding} body inflating to exactly SYNC_MAX_BODY_BYTES (1024) → 200; one byte more → 413, nothing written`, async () => {
      const LIMIT = 1024;
      const small = await startTestServer(ctx.database.db, { SYNC_MAX_BODY_BYTES: String(LIMIT) });
      try {
        const sized = (id: string, bytes: number) => {
          const head = `{"changes":{"ideas":{"created":[{"id":"${id}","text":"`;
          const tail = '"}]}}}';
          return Buffer.from(head + 'x'.repeat(bytes - head.length - tail.length) + tail);
        };
        const send = (body: Buffer) =>
          raw(`${small.url}/api/sync/push`, { method: 'POST', headers: { authorization: `Bearer ${small.token('edge')}`, 'content-type': 'application/json', 'content-encoding': encoding }, body: compress(body) });
        const atLimit = sized(`at-${encoding}`, LIMIT);
        expect(atLimit.length).to.equal(LIMIT);
        const ok = await send(atLimit);
        expect(ok.status, ok.body.toString()).to.equal(200);
        const before = await snapshotAll(ctx.database.db);
        const over = sized(`over-${encoding}`, LIMIT + 1);
        expect(over.length).to.equal(LIMIT + 1);
        const refused = await send(over);
        expect(refused.status, refused.body.toString()).to.equal(413);
        expect(JSON.parse(refused.body.toString()).error.code).to.equal('PAYLOAD_TOO_LARGE');
        expect(await snapshotAll(ctx.database.db)).to.deep.equal(before);
        expect(await ctx.database.db('ideas').where({ user_id: 'edge' }).pluck('id')).to.deep.equal([`at-${encoding}`]);
      } finally {
        await small.close();
      }
    });

    it(`refuses a ${encoding} bomb that inflates past the body limit with 413, and writes nothing`, async () => {
      // 64 MB of one JSON string: tens of kilobytes compressed, 64 times the limit inflated.
      const bomb = compress(Buffer.concat([Buffer.from('{"changes":{"ideas":{"created":[{"id":"b","text":"'), Buffer.alloc(64 * 1024 * 1024, 'a'), Buffer.from('"}]}}}')]));
      expect(bomb.length).to.be.below(1024 * 1024);
      const before = await snapshotAll(ctx.database.db);
      // That it never holds the inflated bomb in memory: test/unit/adapters/http/body.test.ts.
      const answer = await push(bomb, encoding);
      expect(answer.status).to.equal(413);
      expect(JSON.parse(answer.body.toString()).error.code).to.equal('PAYLOAD_TOO_LARGE');
      expect(await snapshotAll(ctx.database.db)).to.deep.equal(before);
      expect((await raw(`${server.url}/healthz`, {})).status).to.equal(200);
    });
  }

  it('refuses a corrupt gzip body with 400 and an unsupported encoding with 400, writing nothing', async () => {
    const before = await snapshotAll(ctx.database.db);
    const corrupt = await push(Buffer.from('this is not gzip at all'), 'gzip');
    expect(corrupt.status).to.equal(400);
    expect(JSON.parse(corrupt.body.toString()).error).to.include({ code: 'VALIDATION_FAILED' });
    const deflate = await push(Buffer.from('{}'), 'compress');
    expect(deflate.status).to.equal(400);
    expect(JSON.parse(deflate.body.toString()).error.message).to.match(/gzip, br/);
    expect(await snapshotAll(ctx.database.db)).to.deep.equal(before);
  });
});
