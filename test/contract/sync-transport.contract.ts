import { expect } from 'chai';
import type { Result } from 'neverthrow';
import sinon from 'sinon';
import type { FetchTransportOptions } from '../../mobile/src/adapters/fetch-transport';
import type { PullHead, PushBody, SyncTransport, TransportFailure } from '../../mobile/src/ports';
import { closedPortUrl, json, startReplyServer, startSilentServer, type StubServer } from '../support/stub-servers';

/**
 * The SyncTransport port's contract (mobile/src/ports/sync-transport.ts), for every transport that
 * reaches a sync server (FetchSyncTransport over HTTP, the in-process fake): answers come back as
 * the protocol's bodies, and the server's refusals as classified failures (spec §4.5) carrying
 * the status and the details that name the records. `runHttpSyncTransportContract` adds what
 * only a transport over HTTP meets: tokens, headers, refused connections, silence, gateways and
 * answers of the wrong shape.
 */

export interface SyncTransportUnderTest {
  /** A transport for a device of `userId` (schema version 1 unless given), against a server with no rows. */
  connect(userId: string, options?: { deviceId?: string; schemaVersion?: number }): SyncTransport;
}

const idea = (id: string, text: string) => ({ id, thought_id: null, text, created_at: 1_700_000_000_000 });
const todo = { id: 't1', thought_id: null, description: 'renew passport', state: 'todo', priority: 'high', deadline: 1_800_000_000_000, completed_at: null, project_id: null, created_at: 1_700_000_000_001 };

const push = (pushId: string, changes: PushBody['changes'], lastPulledAt: number | null = null): PushBody => ({ last_pulled_at: lastPulledAt, push_id: pushId, changes });

function value<T>(r: Result<T, TransportFailure>): T {
  if (r.isErr()) throw new Error(`expected an answer, got ${JSON.stringify(r.error)}`);
  return r.value;
}

function failure(r: Result<unknown, TransportFailure>): TransportFailure {
  if (r.isOk()) throw new Error(`expected a failure, got ${JSON.stringify(r.value)}`);
  return r.error;
}

const ids = (records: ReadonlyArray<Record<string, unknown>>) => records.map((r) => r['id']);

export function runSyncTransportContract(name: string, make: () => SyncTransportUnderTest): void {
  describe(`SyncTransport contract: ${name}`, () => {
    let subject: SyncTransportUnderTest;
    beforeEach(() => {
      subject = make();
    });

    it('pushes records that another device of the user pulls back, whole and in every requested table', async () => {
      const phone = subject.connect('alice', { deviceId: 'phone' });
      const tablet = subject.connect('alice', { deviceId: 'tablet' });
      const answer = value(await phone.push(push('p-1', { ideas: { created: [idea('i1', 'first idea')], updated: [], deleted: [] }, todos: { created: [todo], updated: [], deleted: [] } })));
      expect(answer.conflicts).to.deep.equal([]);
      expect(answer.timestamp).to.be.a('number').greaterThan(0);

      const pulled = value(await tablet.pull({ lastPulledAt: null, tables: ['todos', 'ideas'] }));
      expect(Object.keys(pulled.changes).sort()).to.deep.equal(['ideas', 'todos']);
      expect(pulled.has_more).to.equal(false);
      expect(pulled.timestamp).to.be.at.least(answer.timestamp);
      const [pulledIdea] = pulled.changes['ideas']!.created;
      expect(pulledIdea).to.deep.include(idea('i1', 'first idea'));
      expect(pulledIdea!['last_modified_at']).to.be.a('number');
      expect(pulled.changes['todos']!.created).to.have.length(1);
      expect(pulled.changes['todos']!.created[0]).to.deep.include(todo);
      expect([pulled.changes['ideas']!.updated, pulled.changes['ideas']!.deleted]).to.deep.equal([[], []]);
    });

    it('sends `migration`: the named table comes from the start (all created, this device\'s own rows too) though the cursor is newer', async () => {
      const phone = subject.connect('alice', { deviceId: 'phone' });
      value(await phone.push(push('p-1', { ideas: { created: [idea('i1', 'one')], updated: [], deleted: [] }, todos: { created: [todo], updated: [], deleted: [] } })));
      const cursor = value(await phone.pull({ lastPulledAt: null, tables: ['ideas'] })).timestamp;
      const plain = value(await phone.pull({ lastPulledAt: cursor, tables: ['ideas', 'todos'] }));
      expect([plain.changes['ideas']!.created, plain.changes['todos']!.created]).to.deep.equal([[], []]);
      const migrated = value(await phone.pull({ lastPulledAt: cursor, tables: ['ideas', 'todos'], migration: { from: 1, tables: [], columns: [{ table: 'ideas', columns: ['text'] }] } }));
      expect(ids(migrated.changes['ideas']!.created)).to.deep.equal(['i1']);
      expect(migrated.changes['todos'], 'a table not named: incremental').to.deep.equal({ created: [], updated: [], deleted: [] });
    });

    it('gives a positive cursor to a user with no rows yet', async () => {
      const pulled = value(await subject.connect('nobody').pull({ lastPulledAt: null, tables: ['captures'] }));
      expect(pulled.changes).to.deep.equal({ captures: { created: [], updated: [], deleted: [] } });
      expect(pulled.timestamp).to.be.a('number').greaterThan(0);
    });

    it('sends the device id: a device does not pull back its own pushes, another device does, deletes included', async () => {
      const phone = subject.connect('alice', { deviceId: 'phone' });
      const tablet = subject.connect('alice', { deviceId: 'tablet' });
      value(await phone.push(push('p-1', { ideas: { created: [idea('i1', 'one'), idea('i2', 'two')], updated: [], deleted: [] } })));
      const phoneCursor = value(await phone.pull({ lastPulledAt: null, tables: ['ideas'] })).timestamp;
      const tabletCursor = value(await tablet.pull({ lastPulledAt: null, tables: ['ideas'] })).timestamp;

      value(await phone.push(push('p-2', { ideas: { created: [], updated: [{ ...idea('i1', 'one, edited'), _changed: 'text' }], deleted: ['i2'] } }, phoneCursor)));
      const echo = value(await phone.pull({ lastPulledAt: phoneCursor, tables: ['ideas'] }));
      expect(echo.changes['ideas']).to.deep.equal({ created: [], updated: [], deleted: [] });
      const other = value(await tablet.pull({ lastPulledAt: tabletCursor, tables: ['ideas'] }));
      expect(ids(other.changes['ideas']!.updated)).to.deep.equal(['i1']);
      expect(other.changes['ideas']!.updated[0]).to.include({ text: 'one, edited' });
      expect(other.changes['ideas']!.deleted).to.deep.equal(['i2']);
    });

    it('gives a device its own pushes back when it asks not to suppress echoes', async () => {
      const phone = subject.connect('alice', { deviceId: 'phone' });
      const cursor = value(await phone.pull({ lastPulledAt: null, tables: ['ideas'] })).timestamp;
      value(await phone.push(push('p-1', { ideas: { created: [idea('i1', 'mine')], updated: [], deleted: [] } }, cursor)));
      const suppressed = value(await phone.pull({ lastPulledAt: cursor, tables: ['ideas'] }));
      expect(ids(suppressed.changes['ideas']!.created)).to.deep.equal([]);
      const echoed = value(await phone.pull({ lastPulledAt: cursor, tables: ['ideas'], suppressEcho: false }));
      expect(ids(echoed.changes['ideas']!.created)).to.deep.equal(['i1']);
    });

    it('passes the page limit, and the cursor of a cut page resumes right after it', async () => {
      const phone = subject.connect('alice', { deviceId: 'phone' });
      value(await phone.push(push('p-1', { ideas: { created: [idea('a', 'a'), idea('b', 'b'), idea('c', 'c')], updated: [], deleted: [] } })));
      const reader = subject.connect('alice', { deviceId: 'reader' });
      const first = value(await reader.pull({ lastPulledAt: null, tables: ['ideas'], limit: 2 }));
      expect([ids(first.changes['ideas']!.created), first.has_more]).to.deep.equal([['a', 'b'], true]);
      const second = value(await reader.pull({ lastPulledAt: first.timestamp, tables: ['ideas'], limit: 2 }));
      expect([ids(second.changes['ideas']!.created), second.has_more]).to.deep.equal([['c'], false]);
    });

    it('tells a head, if it tells one, once, before the pull resolves, equal to the body\'s cursor and has_more', async () => {
      const phone = subject.connect('alice', { deviceId: 'phone' });
      value(await phone.push(push('p-1', { ideas: { created: [idea('a', 'a'), idea('b', 'b'), idea('c', 'c')], updated: [], deleted: [] } })));
      const reader = subject.connect('alice', { deviceId: 'reader' });
      let since: number | null = null;
      // Two pages of 2: the first has more, the second is the last.
      for (let n = 0; n < 2; n++) {
        const heads: Array<{ head: PullHead; beforeResolve: boolean }> = [];
        let resolved = false;
        const answer = await reader.pull({ lastPulledAt: since, tables: ['ideas'], limit: 2, onHead: (head) => heads.push({ head, beforeResolve: !resolved }) });
        resolved = true;
        const page = value(answer);
        await new Promise((r) => setImmediate(r)); // a late head would show here
        expect(heads.length).to.be.at.most(1);
        if (heads.length === 1) expect(heads[0]).to.deep.equal({ head: { timestamp: page.timestamp, hasMore: page.has_more }, beforeResolve: true });
        since = page.timestamp;
      }
    });

    it('returns the first answer to a replayed push_id and writes nothing more', async () => {
      const phone = subject.connect('alice', { deviceId: 'phone' });
      const body = push('p-same', { ideas: { created: [idea('i1', 'once')], updated: [], deleted: [] } });
      const first = value(await phone.push(body));
      const replay = value(await phone.push(body));
      expect(replay).to.deep.equal(first);
      const after = value(await subject.connect('alice', { deviceId: 'reader' }).pull({ lastPulledAt: first.timestamp, tables: ['ideas'] }));
      expect(after.changes['ideas']).to.deep.equal({ created: [], updated: [], deleted: [] });
    });

    it('reports a push_id reused for another body as a non-retryable CONFLICT (409)', async () => {
      const phone = subject.connect('alice', { deviceId: 'phone' });
      value(await phone.push(push('p-same', { ideas: { created: [idea('i1', 'first body')], updated: [], deleted: [] } })));
      const f = failure(await phone.push(push('p-same', { ideas: { created: [idea('i1', 'second body')], updated: [], deleted: [] } })));
      expect(f).to.include({ kind: 'CONFLICT', retryable: false, status: 409, code: 'PUSH_ID_REUSED' });
    });

    it('reports an invalid push as a non-retryable 400 whose details name the record and column, and writes nothing', async () => {
      const phone = subject.connect('alice', { deviceId: 'phone' });
      const f = failure(await phone.push(push('p-bad', { ideas: { created: [idea('good', 'fine'), { ...idea('bad', 'x'), text: 42 }], updated: [], deleted: [] } })));
      expect(f).to.include({ kind: 'SERVER_ERROR', retryable: false, status: 400, code: 'VALIDATION_FAILED' });
      expect(f.message).to.be.a('string').that.is.not.empty;
      expect(f.details?.some((d) => d.table === 'ideas' && d.id === 'bad' && d.column === 'text'), JSON.stringify(f.details)).to.equal(true);
      expect(f.details?.some((d) => d.id === 'good'), JSON.stringify(f.details)).to.equal(false);
      const pulled = value(await phone.pull({ lastPulledAt: null, tables: ['ideas'] }));
      expect(pulled.changes['ideas']!.created).to.deep.equal([]);
    });

    it('reports a push over the record limit as a non-retryable 413', async () => {
      const many = Array.from({ length: 1001 }, (_, i) => idea(`i${i}`, `idea ${i}`));
      const f = failure(await subject.connect('alice').push(push('p-big', { ideas: { created: many, updated: [], deleted: [] } })));
      expect(f).to.include({ retryable: false, status: 413, code: 'PAYLOAD_TOO_LARGE' });
    });

    it('reports an unsupported schema version as a non-retryable SCHEMA_MISMATCH (426), on pull and on push', async () => {
      const future = subject.connect('alice', { schemaVersion: 99 });
      const onPull = failure(await future.pull({ lastPulledAt: null, tables: ['ideas'] }));
      const onPush = failure(await future.push(push('p-1', { ideas: { created: [idea('i1', 'x')], updated: [], deleted: [] } })));
      for (const f of [onPull, onPush]) expect(f).to.include({ kind: 'SCHEMA_MISMATCH', retryable: false, status: 426, code: 'SCHEMA_VERSION_UNSUPPORTED' });
      expect(failure(await subject.connect('alice', { schemaVersion: 0 }).pull({ lastPulledAt: null, tables: ['ideas'] })).kind).to.equal('SCHEMA_MISMATCH');
    });

    it('speaks for its own user only', async () => {
      value(await subject.connect('alice').push(push('p-1', { ideas: { created: [idea('i1', "alice's")], updated: [], deleted: [] } })));
      const bob = value(await subject.connect('bob').pull({ lastPulledAt: null, tables: ['ideas'] }));
      expect(bob.changes['ideas']!.created).to.deep.equal([]);
    });
  });
}

/** The options an HTTP transport under test takes: those of FetchSyncTransport. */
export type HttpTransportOptions = FetchTransportOptions;

export interface HttpSyncTransportUnderTest {
  /** The real sync server, and a valid token for one of its users. */
  readonly baseUrl: string;
  token(userId: string, options?: { admin?: boolean }): string;
  create(options: HttpTransportOptions): SyncTransport;
}

const realFetch = globalThis.fetch;
const anIdea = (id: string): PushBody => push(`push-${id}`, { ideas: { created: [idea(id, id)], updated: [], deleted: [] } });

/** A fetch that records every request's headers and passes it to the real fetch. */
function recordingFetch(): { fetch: typeof fetch; seen: Array<{ url: string; method: string; headers: Headers }> } {
  const seen: Array<{ url: string; method: string; headers: Headers }> = [];
  const recording: typeof fetch = (input, init) => {
    seen.push({ url: String(input), method: init?.method ?? 'GET', headers: new Headers(init?.headers) });
    return realFetch(input, init);
  };
  return { fetch: recording, seen };
}

export function runHttpSyncTransportContract(name: string, make: () => HttpSyncTransportUnderTest): void {
  describe(`SyncTransport over HTTP contract: ${name}`, () => {
    let subject: HttpSyncTransportUnderTest;
    const stubs: StubServer[] = [];
    beforeEach(() => {
      subject = make();
    });
    afterEach(async () => {
      sinon.restore();
      for (const s of stubs.splice(0)) await s.close();
    });
    const stub = async (reply: Parameters<typeof startReplyServer>[0]) => {
      const s = await startReplyServer(reply);
      stubs.push(s);
      return s;
    };
    const overStub = (s: StubServer, o: Partial<HttpTransportOptions> = {}) => subject.create({ baseUrl: s.url, getToken: () => 'token', deviceId: 'd1', ...o });

    it('uses the injected fetch for every request, never the global one', async () => {
      const { fetch, seen } = recordingFetch();
      sinon.replace(globalThis, 'fetch', sinon.fake.rejects(new Error('the global fetch was used')));
      const t = subject.create({ baseUrl: subject.baseUrl, getToken: () => subject.token('u1'), deviceId: 'd1', schemaVersion: 1, fetch });
      value(await t.push(anIdea('i1')));
      value(await t.pull({ lastPulledAt: null, tables: ['ideas'] }));
      expect(seen.map((r) => r.method)).to.deep.equal(['POST', 'GET']);
    });

    it('asks getToken before every request and sends the bearer token it returned', async () => {
      const tokens = [subject.token('u1'), subject.token('u1', { admin: true })];
      expect(tokens[0]).not.to.equal(tokens[1]);
      let asked = 0;
      const { fetch, seen } = recordingFetch();
      const t = subject.create({ baseUrl: subject.baseUrl, getToken: async () => tokens[asked++ % 2]!, deviceId: 'd1', schemaVersion: 1, fetch });
      value(await t.pull({ lastPulledAt: null, tables: ['ideas'] }));
      value(await t.push(anIdea('i1')));
      value(await t.pull({ lastPulledAt: null, tables: ['ideas'] }));
      expect(asked).to.equal(3);
      expect(seen.map((r) => r.headers.get('authorization'))).to.deep.equal([`Bearer ${tokens[0]}`, `Bearer ${tokens[1]}`, `Bearer ${tokens[0]}`]);
    });

    it('sends X-Device-Id and X-Schema-Version on pull and push', async () => {
      const { fetch, seen } = recordingFetch();
      const t = subject.create({ baseUrl: `${subject.baseUrl}/`, getToken: () => subject.token('u1'), deviceId: 'phone-42', schemaVersion: 1, fetch });
      value(await t.pull({ lastPulledAt: null, tables: ['ideas'] }));
      value(await t.push(anIdea('i1')));
      expect(seen.map((r) => [r.headers.get('x-device-id'), r.headers.get('x-schema-version')])).to.deep.equal([
        ['phone-42', '1'],
        ['phone-42', '1'],
      ]);
      expect(seen.map((r) => new URL(r.url).pathname)).to.deep.equal(['/api/sync/pull', '/api/sync/push']);
    });

    it('leaves X-Device-Id out of a pull that asks not to suppress echoes', async () => {
      const { fetch, seen } = recordingFetch();
      const t = subject.create({ baseUrl: subject.baseUrl, getToken: () => subject.token('u1'), deviceId: 'phone-42', schemaVersion: 1, fetch });
      value(await t.pull({ lastPulledAt: null, tables: ['ideas'], suppressEcho: false }));
      value(await t.pull({ lastPulledAt: null, tables: ['ideas'], suppressEcho: true }));
      expect(seen.map((r) => r.headers.get('x-device-id'))).to.deep.equal([null, 'phone-42']);
    });

    it('reports a refused token as a non-retryable AUTH_ERROR (401)', async () => {
      const t = subject.create({ baseUrl: subject.baseUrl, getToken: () => 'not-a-jwt', deviceId: 'd1', schemaVersion: 1 });
      for (const r of [await t.pull({ lastPulledAt: null, tables: ['ideas'] }), await t.push(anIdea('i1'))]) {
        expect(failure(r)).to.include({ kind: 'AUTH_ERROR', retryable: false, status: 401, code: 'TOKEN_INVALID' });
      }
    });

    it('answers a 401 once: getToken({ forceRefresh: true }), then the same request again with the new token', async () => {
      const asked: boolean[] = [];
      const { fetch, seen } = recordingFetch();
      const good = subject.token('u1');
      const t = subject.create({ baseUrl: subject.baseUrl, getToken: (o) => (asked.push(o?.forceRefresh === true), o?.forceRefresh ? good : 'not-a-jwt'), deviceId: 'd1', schemaVersion: 1, fetch });
      value(await t.push(anIdea('i1')));
      expect(asked).to.deep.equal([false, true]);
      expect(seen.map((r) => [r.method, r.headers.get('authorization')])).to.deep.equal([
        ['POST', 'Bearer not-a-jwt'],
        ['POST', `Bearer ${good}`],
      ]);
      const pulled = value(await t.pull({ lastPulledAt: null, tables: ['ideas'] }));
      expect(pulled.changes['ideas']!.created.map((r) => r['id'])).to.deep.equal(['i1']);
    });

    it('reports a token refused again after the refresh as AUTH_ERROR with the server\'s code, after two requests', async () => {
      const asked: boolean[] = [];
      const { fetch, seen } = recordingFetch();
      const t = subject.create({ baseUrl: subject.baseUrl, getToken: (o) => (asked.push(o?.forceRefresh === true), 'not-a-jwt'), deviceId: 'd1', schemaVersion: 1, fetch });
      expect(failure(await t.pull({ lastPulledAt: null, tables: ['ideas'] }))).to.include({ kind: 'AUTH_ERROR', retryable: false, status: 401, code: 'TOKEN_INVALID' });
      expect(asked).to.deep.equal([false, true]);
      expect(seen).to.have.length(2);
    });

    it('reports a getToken that throws as a non-retryable AUTH_ERROR without sending anything', async () => {
      const { fetch, seen } = recordingFetch();
      const t = subject.create({ baseUrl: subject.baseUrl, getToken: () => Promise.reject(new Error('logged out')), deviceId: 'd1', fetch });
      const f = failure(await t.pull({ lastPulledAt: null, tables: ['ideas'] }));
      expect(f).to.include({ kind: 'AUTH_ERROR', retryable: false });
      expect(f.message).to.match(/logged out/);
      expect(seen).to.deep.equal([]);
    });

    it('reports a refused connection as a retryable NETWORK_ERROR', async () => {
      const t = subject.create({ baseUrl: await closedPortUrl(), getToken: () => 'token', deviceId: 'd1' });
      for (const r of [await t.pull({ lastPulledAt: null, tables: ['ideas'] }), await t.push(anIdea('i1'))]) {
        const f = failure(r);
        expect(f).to.include({ kind: 'NETWORK_ERROR', retryable: true });
        expect(f.status).to.equal(undefined);
      }
    });

    it("names a pull's cursor from the real server's head: the body's timestamp and has_more", async () => {
      const t = subject.create({ baseUrl: subject.baseUrl, getToken: () => subject.token('u1'), deviceId: 'd1', schemaVersion: 1 });
      value(await t.push(push('p-h', { ideas: { created: [idea('a', 'a'), idea('b', 'b')], updated: [], deleted: [] } })));
      const heads: PullHead[] = [];
      const first = value(await t.pull({ lastPulledAt: null, tables: ['ideas'], limit: 1, suppressEcho: false, onHead: (h) => heads.push(h) }));
      const last = value(await t.pull({ lastPulledAt: first.timestamp, tables: ['ideas'], limit: 1, suppressEcho: false, onHead: (h) => heads.push(h) }));
      expect(heads).to.deep.equal([
        { timestamp: first.timestamp, hasMore: true },
        { timestamp: last.timestamp, hasMore: false },
      ]);
    });

    it('tells the head as it arrives, before the body, which may come much later', async () => {
      let sendBody!: () => void;
      const bodyMayGo = new Promise<void>((r) => (sendBody = r));
      const s = await stub((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-sync-timestamp': '42', 'x-sync-has-more': 'true' });
        res.flushHeaders();
        void bodyMayGo.then(() => res.end(JSON.stringify({ changes: { ideas: { created: [], updated: [], deleted: [] } }, timestamp: 42, has_more: true })));
      });
      let told!: (h: PullHead) => void;
      const head = new Promise<PullHead>((r) => (told = r));
      let resolved = false;
      const pulling = overStub(s).pull({ lastPulledAt: 7, tables: ['ideas'], onHead: (h) => told(h) }).finally(() => (resolved = true));
      expect(await head).to.deep.equal({ timestamp: 42, hasMore: true });
      expect(resolved, 'the pull resolved before its body was sent').to.equal(false);
      sendBody();
      expect(value(await pulling)).to.include({ timestamp: 42, has_more: true });
    });

    it('tells no head for an error answer, or a head without both valid headers (tried: "abc", -1, "yes", absent)', async () => {
      const heads: PullHead[] = [];
      const cases: Array<[number, Record<string, string>]> = [
        [503, { 'x-sync-timestamp': '42', 'x-sync-has-more': 'true' }],
        [200, { 'x-sync-timestamp': 'abc', 'x-sync-has-more': 'true' }],
        [200, { 'x-sync-timestamp': '-1', 'x-sync-has-more': 'false' }],
        [200, { 'x-sync-timestamp': '42', 'x-sync-has-more': 'yes' }],
        [200, { 'x-sync-has-more': 'true' }],
      ];
      for (const [status, headers] of cases) {
        const s = await stub((_req, res) => {
          res.writeHead(status, { 'content-type': 'application/json', ...headers });
          res.end(JSON.stringify(status === 200 ? { changes: {}, timestamp: 42, has_more: false } : { error: { code: 'UNAVAILABLE', message: 'down' } }));
        });
        await overStub(s).pull({ lastPulledAt: null, tables: ['ideas'], onHead: (h) => heads.push(h) });
      }
      expect(heads).to.deep.equal([]);
    });

    it('reports a server that never answers as a retryable TIMEOUT after timeoutMs', async () => {
      const silent = await startSilentServer();
      stubs.push(silent);
      const t = subject.create({ baseUrl: silent.url, getToken: () => 'token', deviceId: 'd1', timeoutMs: 150 });
      const started = Date.now();
      const f = failure(await t.pull({ lastPulledAt: null, tables: ['ideas'] }));
      expect(f).to.include({ kind: 'TIMEOUT', retryable: true });
      expect(Date.now() - started).to.be.within(100, 5_000);
    });

    it('reports an answer whose body stops coming as a retryable TIMEOUT', async () => {
      const s = await stub((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"changes": {"ideas": {"created": [');
      });
      const f = failure(await overStub(s, { timeoutMs: 150 }).pull({ lastPulledAt: null, tables: ['ideas'] }));
      expect(f).to.include({ kind: 'TIMEOUT', retryable: true });
    });

    it('reports a connection cut in the middle of the answer as a retryable NETWORK_ERROR', async () => {
      const s = await stub((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"timestamp": 17', () => res.socket?.destroy());
      });
      const f = failure(await overStub(s).push(anIdea('i1')));
      expect(f).to.include({ kind: 'NETWORK_ERROR', retryable: true });
    });

    it('reports a 503 with the error shape as a retryable SERVER_ERROR with the server\'s code and message', async () => {
      const s = await stub((_req, res) => json(res, 503, { error: { code: 'UNAVAILABLE', message: 'database restarting' } }));
      for (const r of [await overStub(s).pull({ lastPulledAt: null, tables: ['ideas'] }), await overStub(s).push(anIdea('i1'))]) {
        expect(failure(r)).to.include({ kind: 'SERVER_ERROR', retryable: true, status: 503, code: 'UNAVAILABLE', message: 'database restarting' });
      }
    });

    it('reports a 500 as a retryable SERVER_ERROR', async () => {
      const s = await stub((_req, res) => json(res, 500, { error: { code: 'INTERNAL', message: 'The server failed to process the request.' } }));
      expect(failure(await overStub(s).push(anIdea('i1')))).to.include({ kind: 'SERVER_ERROR', retryable: true, status: 500, code: 'INTERNAL' });
    });

    it('reports a gateway\'s non-JSON 502 as a retryable SERVER_ERROR', async () => {
      const s = await stub((_req, res) => {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html><body>Bad Gateway</body></html>');
      });
      const f = failure(await overStub(s).pull({ lastPulledAt: null, tables: ['ideas'] }));
      expect(f).to.include({ kind: 'SERVER_ERROR', retryable: true, status: 502 });
      expect(f.code).to.equal(undefined);
    });

    it('passes on the seconds a 429 asks to wait', async () => {
      const s = await stub((_req, res) => json(res, 429, { error: { code: 'RATE_LIMITED', message: 'slow down' } }, { 'retry-after': '7' }));
      expect(failure(await overStub(s).pull({ lastPulledAt: null, tables: ['ideas'] }))).to.include({ kind: 'SERVER_ERROR', retryable: true, status: 429, retryAfterSeconds: 7 });
    });

    it('reports a 200 answer of the wrong shape as a non-retryable SERVER_ERROR', async () => {
      const answers: unknown[] = [{ changes: 'nope', timestamp: 5 }, { changes: {}, timestamp: 0 }, { timestamp: 'soon', conflicts: [] }, 'just text'];
      let next = 0;
      const s = await stub((_req, res) => json(res, 200, answers[next++]));
      const t = overStub(s);
      const results = [
        await t.pull({ lastPulledAt: null, tables: ['ideas'] }),
        await t.pull({ lastPulledAt: null, tables: ['ideas'] }),
        await t.push(anIdea('i1')),
        await t.push(anIdea('i2')),
      ];
      for (const r of results) expect(failure(r)).to.include({ kind: 'SERVER_ERROR', retryable: false });
    });

    it('reports a 200 answer that is not JSON as a non-retryable SERVER_ERROR', async () => {
      const s = await stub((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>captive portal login</html>');
      });
      expect(failure(await overStub(s).pull({ lastPulledAt: null, tables: ['ideas'] }))).to.include({ kind: 'SERVER_ERROR', retryable: false });
    });
  });
}
