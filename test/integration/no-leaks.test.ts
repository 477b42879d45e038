import { Writable } from 'node:stream';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { pino } from 'pino';
import { describeEachDatabase } from '../support/databases';
import { send, type RawAnswer } from '../support/http-helpers';
import { startTestServer, TEST_SECRET, type TestServer } from '../support/server';

/**
 * Nothing secret leaves the server by the side doors (spec §1, §2, §4.5): with every log level on
 * ('trace'), no log line carries a bearer token (whole or its signature) or a private note's
 * text, and no answer carries a stack trace, a source path or the database's own error text —
 * a failure inside the database included (a trigger makes one, for one user only).
 */

const SECRET_NOTE = 'SECRET-NOTE-q7Zk2vX9';
const SECRET_CLAIM = 'SECRET-CLAIM-Lp4Wm8Ns';
const GENERIC_500 = { error: { code: 'INTERNAL', message: 'The server failed to process the request.' } };
/** What a client must never see: stack frames, source paths, SQL and PostgreSQL's wording. */
const INTERNALS = [/\bat [\w.<>]+ \(/, /\bat (file:|\/)/, /\/src\//, /node_modules/, /\.[tj]s:\d+/, /\brelation\b/i, /syntax error/i, /violates/i, /INSERT INTO/i, /\bselect\b.+\bfrom\b/i, /PL\/pgSQL/i, /P0001/, /doomed_trigger/i];

describeEachDatabase('no leaks: logs and error answers', (ctx) => {
  const lines: string[] = [];
  const answers: Array<{ what: string; answer: RawAnswer }> = [];
  const tokens: string[] = [];
  let syncLogs: unknown[] = [];
  let server: TestServer;

  before(async function () {
    this.timeout(60_000);
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    server = await startTestServer(ctx.database.db, {}, { logger: pino({ level: 'trace' }, stream) });
    const db = ctx.database.db;
    await db.raw(`CREATE OR REPLACE FUNCTION doomed_trigger() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION 'relation "ideas": INSERT INTO ideas violates doomed_trigger for %', NEW.user_id; END $$ LANGUAGE plpgsql`);
    await db.raw(`CREATE TRIGGER doomed_trigger BEFORE INSERT OR UPDATE ON ideas FOR EACH ROW WHEN (NEW.user_id = 'doomed') EXECUTE FUNCTION doomed_trigger()`);

    try {
      const now = Math.floor(Date.now() / 1000);
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const good = server.token('alice');
      const doomed = server.token('doomed');
      const forged = {
        'a wrong signature, a secret in the payload': jwt.sign({ sub: 'alice', note: SECRET_CLAIM, exp: now + 60 }, 'another-secret-0123456789abcdef0123456789'),
        'expired, a secret in the payload': jwt.sign({ sub: 'alice', note: SECRET_CLAIM, exp: now - 3600 }, TEST_SECRET),
        'no sub, a secret in the payload': jwt.sign({ note: SECRET_CLAIM, exp: now + 60 }, TEST_SECRET),
        'a secret as the sub, with a control character': jwt.sign({ sub: `${SECRET_CLAIM}\n`, exp: now + 60 }, TEST_SECRET),
        'not yet valid, a secret in the payload': jwt.sign({ sub: 'alice', note: SECRET_CLAIM, exp: now + 7200, nbf: now + 3600 }, TEST_SECRET),
        'alg none, a secret in the payload': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', note: SECRET_CLAIM, exp: now + 60 })}.`,
        'a secret in a malformed token': `${SECRET_CLAIM}.${SECRET_CLAIM}.${SECRET_CLAIM}`,
      };
      tokens.push(good, doomed, server.token('root', { admin: true }), ...Object.values(forged));

      const call = async (what: string, path: string, token: string | null, init: RequestInit = {}) => {
        const headers = { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', 'x-device-id': 'phone-1', ...(init.headers as Record<string, string>) };
        const answer = await send(`${server.url}${path}`, { ...init, headers, signal: AbortSignal.timeout(5000) });
        answers.push({ what, answer });
        return answer;
      };
      const push = (what: string, token: string, body: unknown) => call(what, '/api/sync/push', token, { method: 'POST', body: JSON.stringify(body) });
      const secretCapture = (id: string) => ({ id, type: 'text', raw_content: `my pin is ${SECRET_NOTE}`, normalized_text: `pin ${SECRET_NOTE}` });

      expect((await call('first pull', '/api/sync/pull?last_pulled_at=0', good)).status).to.equal(200);
      const pushed = await push('push of a secret note', good, { push_id: 'p-1', last_pulled_at: null, changes: { captures: { created: [secretCapture('c1')] }, ideas: { created: [{ id: 'i1', text: `idea ${SECRET_NOTE}` }] } } });
      expect(pushed.status, pushed.text).to.equal(200);
      const pulled = await call('pull of the secret note', '/api/sync/pull?last_pulled_at=0', good);
      expect(pulled.text, 'the owner gets the note back decrypted').to.include(SECRET_NOTE);
      expect((await push('400: an unknown column holding the secret', good, { changes: { captures: { created: [{ ...secretCapture('c2'), secret_column: SECRET_NOTE }] } } })).status).to.equal(400);
      expect((await push('400: a wrong type', good, { changes: { captures: { updated: [{ ...secretCapture('c1'), duration_ms: SECRET_NOTE }] } } })).status).to.equal(400);
      expect((await push('409: push_id reused', good, { push_id: 'p-1', changes: { captures: { updated: [secretCapture('c1')] } } })).status).to.equal(409);
      expect((await push("403: another user's user_id", good, { changes: { captures: { created: [{ ...secretCapture('c3'), user_id: 'bob' }] } } })).status).to.equal(403);
      for (const [what, token] of Object.entries(forged)) expect((await call(`401: ${what}`, '/api/sync/pull?last_pulled_at=0', token)).status, what).to.equal(401);
      expect((await call('401: no token', '/api/sync/pull', null)).status).to.equal(401);
      expect((await call('403: not an admin', '/api/admin/sync/stats', good)).status).to.equal(403);
      expect((await call('200: admin stats', '/api/admin/sync/stats?since=0', tokens[2]!)).status).to.equal(200);
      expect((await call('400: bad query', `/api/sync/pull?last_pulled_at=${SECRET_NOTE}&tables=${SECRET_NOTE}`, good)).status).to.equal(400);
      expect((await call('404: no route', '/api/nope', good)).status).to.equal(404);
      const failed = await push('500: the database refuses the insert', doomed, { changes: { captures: { created: [secretCapture('d1')] }, ideas: { created: [{ id: 'd2', text: `doomed idea ${SECRET_NOTE}` }] } } });
      expect(failed.status, failed.text).to.equal(500);
      expect(failed.body).to.deep.equal(GENERIC_500);
      expect((await call('pull after the failure', '/api/sync/pull?last_pulled_at=0', doomed)).status).to.equal(200);
    } finally {
      await db.raw('DROP TRIGGER IF EXISTS doomed_trigger ON ideas');
      await db.raw('DROP FUNCTION IF EXISTS doomed_trigger()');
      await server.close();
      syncLogs = await db('sync_logs').select('*');
    }
  });

  it('the server logged at every level, the 500 with its cause (the control for the checks below)', () => {
    expect(lines.length).to.be.greaterThan(20);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.some((l) => l.level === 20), 'debug lines').to.equal(true);
    expect(parsed.some((l) => l.level >= 50 && /doomed_trigger/.test(JSON.stringify(l))), 'the database failure is logged for the operator').to.equal(true);
  });

  it('no log line holds a token, nor the signature or payload of one', () => {
    for (const token of tokens) {
      const [, payload, signature] = token.split('.');
      for (const part of [token, payload, signature].filter((p): p is string => !!p && p.length >= 8)) {
        const found = lines.filter((l) => l.includes(part));
        expect(found, `log lines holding ${part.slice(0, 20)}…`).to.deep.equal([]);
      }
    }
  });

  it('no log line holds a secret claim of a refused token', () => {
    expect(lines.filter((l) => l.includes(SECRET_CLAIM))).to.deep.equal([]);
  });

  it("no log line holds a private note's text, also when the database refuses the write", () => {
    expect(lines.filter((l) => l.includes(SECRET_NOTE))).to.deep.equal([]);
  });

  it('sync_logs hold no note text, token or database wording', () => {
    const text = JSON.stringify(syncLogs);
    expect(syncLogs.length).to.be.greaterThan(5);
    for (const needle of [SECRET_NOTE, SECRET_CLAIM, ...tokens]) expect(text).not.to.include(needle);
    expect(text).not.to.match(/relation|violates|INSERT INTO|doomed_trigger/i);
  });

  it('no answer carries a stack trace, a source path or SQL error text; the 500 is exactly the generic error', () => {
    expect(answers.length).to.be.greaterThan(15);
    for (const { what, answer } of answers) {
      for (const pattern of INTERNALS) expect(answer.text, `${what}: ${answer.text.slice(0, 300)}`).not.to.match(pattern);
      if (answer.status >= 400) {
        expect(Object.keys(answer.body), what).to.deep.equal(['error']);
        expect(answer.body.error.code, what).to.be.a('string');
        expect(answer.body.error.message, what).to.be.a('string');
      }
      expect(answer.headers.get('x-powered-by'), what).to.equal(null);
    }
    expect(answers.find((a) => a.answer.status === 500)?.answer.text).to.equal(JSON.stringify(GENERIC_500));
  });
});
