import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import {
  expectDetails,
  expectError,
  expectHealthy,
  nestedArrays,
  nestedObjects,
  send,
  snapshotDb,
  withOwnKey,
  type ExpectedDetail,
  type RawAnswer,
} from '../support/http-helpers';
import { startTestServer, storedRow, type TestServer } from '../support/server';

/**
 * Bad input over HTTP (spec §4.2, §4.5): each test names the bad input it sends. Every one gets
 * its status and the error shape (with `details` naming table/id/column where they apply),
 * writes nothing (the database is compared before and after), and leaves the server answering.
 */

type Changes = Record<string, { created?: unknown[]; updated?: unknown[]; deleted?: unknown[] }>;

/** Valid records sent along with each bad one: had the push been applied, they would show. */
const COMPANIONS: Changes = {
  ideas: { created: [{ id: 'fresh', text: 'valid new idea' }] },
  todos: { updated: [{ id: 'todos-companion', description: 'changed by a rejected push' }] },
};

/** A push body: the companions plus `extra`, table by table. */
function pushBody(extra: Changes, top: Record<string, unknown> = {}): Record<string, unknown> {
  const changes: Changes = {};
  for (const source of [COMPANIONS, extra]) {
    for (const table of Object.keys(source)) {
      const into = Object.hasOwn(changes, table) ? changes[table]! : withOwnKey(changes, table, {})[table]!;
      for (const kind of ['created', 'updated', 'deleted'] as const) {
        const add = source[table]![kind];
        if (add) into[kind] = [...(into[kind] ?? []), ...add];
      }
    }
  }
  return { last_pulled_at: null, ...top, changes };
}

const longString = (n: number) => 'x'.repeat(n);

describeEachDatabase('bad input', (ctx) => {
  let server: TestServer;
  let small: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db);
    small = await startTestServer(ctx.database.db, { SYNC_MAX_BODY_BYTES: '4096', SYNC_MAX_RECORD_BYTES: '512', SYNC_MAX_PUSH_RECORDS: '5' });
  });
  after(async () => {
    await Promise.all([server, small].filter(Boolean).map((s) => s.close()));
  });

  beforeEach(async () => {
    const seeded = await server.client('alice').push({
      changes: {
        captures: { created: [{ id: 'captures-1', type: 'text', raw_content: 'seed', tags: '[]' }] },
        todos: { created: [{ id: 'todos-1', description: 'seed' }, { id: 'todos-companion', description: 'seed' }] },
        thoughts: { created: [{ id: 'thoughts-1', capture_id: 'captures-1', summary: 'seed' }] },
        ideas: { created: [{ id: 'ideas-1', text: 'seed' }] },
        projects: { created: [{ id: 'projects-1', name: 'seed' }] },
      },
    });
    expect(seeded.status, JSON.stringify(seeded.body)).to.equal(200);
  });

  function rawPush(target: TestServer, body: unknown, headers: Record<string, string> = {}): Promise<RawAnswer> {
    return send(`${target.url}/api/sync/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.token('alice')}`, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  function rawPull(target: TestServer, query: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
    return send(`${target.url}/api/sync/pull?${query}`, { headers: { authorization: `Bearer ${target.token('alice')}`, ...headers } });
  }

  /** Runs `request`; asserts the status, the error shape and details, that nothing changed, and that the server still answers. */
  async function expectRejected(request: () => Promise<RawAnswer>, status: number, code: string, details?: readonly ExpectedDetail[], target = server): Promise<any> {
    const before = await snapshotDb(ctx.database.db);
    const answer = await request();
    const got = expectError(answer, status, code);
    if (details) expectDetails(got, details);
    expect(await snapshotDb(ctx.database.db)).to.deep.equal(before);
    await expectHealthy(target.url);
    return got;
  }

  const rejectPush = (body: unknown, details?: readonly ExpectedDetail[], headers: Record<string, string> = {}) =>
    expectRejected(() => rawPush(server, body, headers), 400, 'VALIDATION_FAILED', details);

  it('the valid companions alone are accepted and written (the control for every rejection below)', async () => {
    const r = await rawPush(server, pushBody({}));
    expect(r.status, r.text).to.equal(200);
    expect(await storedRow(ctx.database.db, 'ideas', 'alice', 'fresh')).to.include({ text: 'valid new idea' });
    expect(await storedRow(ctx.database.db, 'todos', 'alice', 'todos-companion')).to.include({ description: 'changed by a rejected push' });
  });

  describe('the body as a whole', () => {
    const valid = JSON.stringify(pushBody({}));

    it('malformed JSON → 400', async () => {
      await rejectPush('{"changes": {"ideas": {"created": [', [{}]);
    });

    it('an empty body → 400', async () => {
      await rejectPush('');
    });

    it('valid JSON sent as text/plain → 400 naming Content-Type', async () => {
      await rejectPush(valid, [{ column: 'Content-Type' }], { 'content-type': 'text/plain' });
    });

    it('valid JSON sent as application/x-www-form-urlencoded → 400 naming Content-Type', async () => {
      await rejectPush(valid, [{ column: 'Content-Type' }], { 'content-type': 'application/x-www-form-urlencoded' });
    });

    it('valid JSON sent with no Content-Type → 400 naming Content-Type', async () => {
      await expectRejected(
        () =>
          send(`${server.url}/api/sync/push`, {
            method: 'POST',
            headers: { authorization: `Bearer ${server.token('alice')}` },
            body: new TextEncoder().encode(valid),
          }),
        400,
        'VALIDATION_FAILED',
        [{ column: 'Content-Type' }],
      );
    });

    it('a Content-Encoding: gzip body → 400 naming Content-Encoding', async () => {
      await rejectPush(valid, [{ column: 'Content-Encoding' }], { 'content-encoding': 'gzip' });
    });

    for (const [what, text] of [
      ['a JSON array', `[${valid}]`],
      ['an empty JSON array', '[]'],
      ['a JSON number', '42'],
      ['a JSON string', '"changes"'],
      ['JSON null', 'null'],
      ['JSON true', 'true'],
    ] as const) {
      it(`a body that is ${what} → 400`, async () => {
        await rejectPush(text, [{}]);
      });
    }

    it('a body without "changes" → 400 naming changes', async () => {
      await rejectPush({ last_pulled_at: null }, [{ column: 'changes' }]);
    });

    for (const [what, changes] of [
      ['an array', []],
      ['a string', 'ideas'],
      ['null', null],
    ] as const) {
      it(`"changes" that is ${what} → 400 naming changes`, async () => {
        await rejectPush({ changes }, [{ column: 'changes' }]);
      });
    }

    it('an unknown top-level key next to valid changes → 400', async () => {
      await rejectPush(pushBody({}, { extra: 1 }), [{ reason: /extra/ }]);
    });

    it('a top-level "__proto__" key → 400', async () => {
      await rejectPush(withOwnKey(pushBody({}), '__proto__', { user_id: 'bob' }), [{ reason: /__proto__/ }]);
    });

    it('a top-level "constructor" key → 400', async () => {
      await rejectPush(pushBody({}, { constructor: { user_id: 'bob' } }), [{ reason: /constructor/ }]);
    });

    for (const [what, value] of [
      ['a string', 'yesterday'],
      ['a negative number', -1],
      ['a fraction', 1.5],
      ['an object', {}],
    ] as const) {
      it(`last_pulled_at that is ${what} → 400 naming last_pulled_at`, async () => {
        await rejectPush(pushBody({}, { last_pulled_at: value }), [{ column: 'last_pulled_at' }]);
      });
    }

    for (const [what, value] of [
      ['a number', 5],
      ['an empty string', ''],
      ['129 characters long', longString(129)],
      ['a string with a newline', 'push\n1'],
    ] as const) {
      it(`push_id that is ${what} → 400 naming push_id`, async () => {
        await rejectPush(pushBody({}, { push_id: value }), [{ column: 'push_id' }]);
      });
    }

    for (const [what, tableChanges] of [
      ['an array', []],
      ['null', null],
      ['an object whose created is not an array', { created: { id: 'x' } }],
      ['an object with an unknown key "removed"', { removed: ['todos-1'] }],
    ] as const) {
      it(`a table entry that is ${what} → 400 naming the table`, async () => {
        await rejectPush({ changes: { ...pushBody({}).changes as object, projects: tableChanges } }, [{ table: 'projects' }]);
      });
    }

    it('a record that is not an object (a string) → 400 naming the table', async () => {
      await rejectPush(pushBody({ ideas: { created: ['ideas-9'] } }), [{ table: 'ideas', reason: /object/ }]);
    });
  });

  describe('values of the wrong type, per column type', () => {
    const cases: Array<[string, string, string, unknown]> = [
      ['text', 'ideas', 'text', 5],
      ['text', 'ideas', 'text', true],
      ['text', 'ideas', 'text', { text: 'x' }],
      ['text', 'ideas', 'text', ['x']],
      ['text (not nullable)', 'ideas', 'text', null],
      ['nullable text', 'ideas', 'thought_id', 5],
      ['nullable text', 'ideas', 'thought_id', {}],
      ['enum', 'todos', 'state', 'finished'],
      ['enum', 'todos', 'state', 'TODO'],
      ['enum', 'todos', 'state', 1],
      ['enum (not nullable)', 'todos', 'state', null],
      ['enum', 'todos', 'priority', 'urgent'],
      ['enum', 'captures', 'type', 'video'],
      ['integer', 'todos', 'deadline', 1.5],
      ['integer', 'todos', 'deadline', '1000'],
      ['integer', 'todos', 'deadline', true],
      ['integer', 'todos', 'deadline', 2 ** 53],
      ['integer', 'todos', 'deadline', { ms: 1 }],
      ['integer', 'captures', 'duration_ms', 'long'],
      ['boolean', 'projects', 'archived', 'true'],
      ['boolean', 'projects', 'archived', 1],
      ['boolean (not nullable)', 'projects', 'archived', null],
      ['JSON array as string', 'captures', 'tags', '{"a":1}'],
      ['JSON array as string', 'captures', 'tags', 'not json'],
      ['JSON array as string', 'captures', 'tags', '"a"'],
      ['JSON array as string', 'captures', 'tags', ['a']],
      ['JSON array as string', 'captures', 'tags', 5],
      ['JSON array as string (not nullable)', 'captures', 'tags', null],
      ['created_at (ms)', 'ideas', 'created_at', -1],
      ['created_at (ms)', 'ideas', 'created_at', 1.5],
      ['created_at (ms)', 'ideas', 'created_at', '1000'],
      ['created_at (ms)', 'ideas', 'created_at', null],
      ['_changed (column list)', 'todos', '_changed', 5],
      ['_changed (column list)', 'todos', '_changed', ['state']],
      ['_status (ignored, but a string)', 'todos', '_status', 5],
      ['last_modified_at (ignored, but a number or null)', 'todos', 'last_modified_at', 'yesterday'],
    ];
    for (const [type, table, column, value] of cases) {
      it(`${type}: ${table}.${column} = ${JSON.stringify(value)} → 400 naming table, id and column`, async () => {
        await rejectPush(pushBody({ [table]: { updated: [{ id: `${table}-1`, [column]: value }] } }), [{ table, id: `${table}-1`, column }]);
      });
    }

    // PostgreSQL text cannot hold U+0000: the value must be refused as invalid, not fail in the database.
    it('text with a NUL character: ideas.text = "a\\u0000b" → 400 naming the column', async () => {
      await rejectPush(pushBody({ ideas: { updated: [{ id: 'ideas-1', text: 'a\u0000b' }] } }), [{ table: 'ideas', id: 'ideas-1', column: 'text' }]);
    });

    it('text with a NUL character in a required column of a create: captures.raw_content → 400 naming the column', async () => {
      await rejectPush(pushBody({ captures: { created: [{ id: 'captures-9', type: 'text', raw_content: 'voice\u0000memo' }] } }), [
        { table: 'captures', id: 'captures-9', column: 'raw_content' },
      ]);
    });

    // A lone surrogate is valid JSON but not Unicode: stored, it would silently become U+FFFD and
    // the device's copy would never match the server's again.
    it('text with a lone UTF-16 surrogate: ideas.text = "a\\ud800b" → 400 naming the column', async () => {
      await rejectPush('{"changes":{"ideas":{"updated":[{"id":"ideas-1","text":"a\\ud800b"}]}}}', [{ table: 'ideas', id: 'ideas-1', column: 'text' }]);
    });
  });

  describe('unknown tables', () => {
    for (const table of [
      'nope',
      '__proto__',
      'constructor',
      'hasOwnProperty',
      'Todos',
      'todos ',
      'public.todos',
      'sync_users',
      'sync_conflicts',
      'sync_push_receipts',
      'captures; DROP TABLE todos',
      "todos' OR '1'='1",
      'todos"; DELETE FROM todos; --',
    ]) {
      it(`table ${JSON.stringify(table)} → 400 naming the table as unknown`, async () => {
        const body = pushBody({});
        withOwnKey(body['changes'] as object, table, { created: [{ id: 'x1', text: 'y', user_id: 'alice', last_ts: 1 }], deleted: ['todos-1'] });
        await rejectPush(body, [{ table, reason: /unknown table/ }]);
        expect((await ctx.database.db('todos').where({ user_id: 'alice' }).select('id')).map((r: any) => r.id)).to.have.members(['todos-1', 'todos-companion']);
      });
    }
  });

  describe('unknown columns', () => {
    const cases: Array<[string, string, unknown]> = [
      ['ideas', 'nope', 'x'],
      ['ideas', '__proto__', { user_id: 'bob', text: 'polluted' }],
      ['ideas', 'constructor', { prototype: { text: 'polluted' } }],
      ['ideas', 'toString', 'x'],
      ['ideas', 'Text', 'x'],
      ['ideas', 'text ', 'x'],
      ['ideas', "text = 'x' --", 'x'],
      ['ideas', 'text; DROP TABLE ideas', 'x'],
      ['ideas', 'id" = id; --', 'x'],
      ['ideas', 'text\u0000', 'x'],
      ['ideas', 'first_written_at', 1],
      ['ideas', 'last_modified_by', 'another-device'],
      ['ideas', 'written_by', 'another-device'],
      ['captures', 'encrypted', true],
    ];
    for (const [table, column, value] of cases) {
      it(`${table} column ${JSON.stringify(column)} → 400 naming table, id and column as unknown`, async () => {
        const record = withOwnKey({ id: `${table}-1` }, column, value);
        await rejectPush(pushBody({ [table]: { updated: [record] } }), [{ table, id: `${table}-1`, column, reason: /unknown column/ }]);
      });
    }
  });

  describe('ids', () => {
    const bad: Array<[string, unknown]> = [
      ['an empty id', ''],
      ['an id of 129 characters', longString(129)],
      ['a numeric id', 5],
      ['a null id', null],
      ['an object id', { id: 'x' }],
      ['an array id', ['x']],
      ['a boolean id', true],
      ['an id with a NUL character', 'a\u0000b'],
      ['an id with a newline', 'a\nb'],
      ['an id with a tab', 'a\tb'],
      ['an id with DEL', 'a\u007fb'],
    ];
    for (const [what, id] of bad) {
      it(`${what} in created → 400 naming the table and column id`, async () => {
        await rejectPush(pushBody({ ideas: { created: [{ id, text: 'x' }] } }), [{ table: 'ideas', column: 'id' }]);
      });
      it(`${what} in deleted → 400 naming the table and column id`, async () => {
        await rejectPush(pushBody({ todos: { deleted: [id] } }), [{ table: 'todos', column: 'id' }]);
      });
    }

    it('an id with a lone UTF-16 surrogate in created → 400 naming the table and column id', async () => {
      await rejectPush(pushBody({ ideas: { created: [{ id: 'x\ud800', text: 'x' }] } }), [{ table: 'ideas', column: 'id' }]);
    });

    // Both become "x\ufffd" on the way to PostgreSQL: one row written twice in one statement.
    it('two ids that differ only in a lone surrogate, in one push → 400, not a database failure', async () => {
      await rejectPush(pushBody({ ideas: { created: [{ id: 'x\ud800', text: 'a' }, { id: 'x\ud801', text: 'b' }] } }), [{ table: 'ideas' }]);
    });

    it('a record without an id → 400 naming the table and column id', async () => {
      await rejectPush(pushBody({ ideas: { created: [{ text: 'x' }] } }), [{ table: 'ideas', column: 'id' }]);
    });

    it('an id of exactly 128 characters is accepted (the boundary)', async () => {
      const id = 'é'.repeat(128);
      const r = await rawPush(server, { changes: { ideas: { created: [{ id, text: 'long id' }] } } });
      expect(r.status, r.text).to.equal(200);
      expect(await storedRow(ctx.database.db, 'ideas', 'alice', id)).to.include({ text: 'long id' });
    });

    for (const [what, changes] of [
      ['twice in created', { created: [{ id: 'dup', text: 'a' }, { id: 'dup', text: 'b' }] }],
      ['in created and in updated', { created: [{ id: 'dup', text: 'a' }], updated: [{ id: 'dup', text: 'b' }] }],
      ['in created and in deleted', { created: [{ id: 'dup', text: 'a' }], deleted: ['dup'] }],
      ['twice in deleted', { deleted: ['dup', 'dup'] }],
    ] as const) {
      it(`the same id ${what} of one push → 400 naming table and id`, async () => {
        await rejectPush(pushBody({ ideas: changes as any }), [{ table: 'ideas', id: 'dup', reason: /more than once/ }]);
      });
    }
  });

  describe('size limits (SYNC_MAX_RECORD_BYTES=512, SYNC_MAX_PUSH_RECORDS=5, SYNC_MAX_BODY_BYTES=4096)', () => {
    const ideas = (n: number, prefix = 'n') => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, text: 'x' }));

    it('a record of 600 bytes, over SYNC_MAX_RECORD_BYTES → 400 naming table and id', async () => {
      const body = { changes: { ideas: { created: [{ id: 'ok', text: 'small' }, { id: 'big', text: longString(600) }] } } };
      await expectRejected(() => rawPush(small, body), 400, 'VALIDATION_FAILED', [{ table: 'ideas', id: 'big', reason: /512/ }], small);
    });

    it('6 records, over SYNC_MAX_PUSH_RECORDS → 413 PAYLOAD_TOO_LARGE', async () => {
      await expectRejected(() => rawPush(small, { changes: { ideas: { created: ideas(6) } } }), 413, 'PAYLOAD_TOO_LARGE', undefined, small);
    });

    it('6 records over 3 tables, created, updated and deleted → 413 PAYLOAD_TOO_LARGE', async () => {
      const body = {
        changes: {
          ideas: { created: ideas(2) },
          todos: { updated: [{ id: 'todos-1', state: 'done' }], deleted: ['todos-companion'] },
          projects: { deleted: ['projects-1', 'projects-9'] },
        },
      };
      await expectRejected(() => rawPush(small, body), 413, 'PAYLOAD_TOO_LARGE', undefined, small);
    });

    it('6 deleted ids → 413 PAYLOAD_TOO_LARGE', async () => {
      const body = { changes: { todos: { deleted: ['todos-1', 'todos-companion', 'a', 'b', 'c', 'd'] } } };
      await expectRejected(() => rawPush(small, body), 413, 'PAYLOAD_TOO_LARGE', undefined, small);
    });

    it('exactly 5 records is accepted (the boundary)', async () => {
      const r = await rawPush(small, { changes: { ideas: { created: ideas(5) } } });
      expect(r.status, r.text).to.equal(200);
      expect(await ctx.database.db('ideas').where({ user_id: 'alice' }).whereLike('id', 'n%')).to.have.length(5);
    });

    it('a 6 KB body with Content-Length, over SYNC_MAX_BODY_BYTES → 413 PAYLOAD_TOO_LARGE', async () => {
      const body = JSON.stringify({ changes: { ideas: { created: [{ id: 'big', text: longString(6000) }] } } });
      await expectRejected(() => rawPush(small, body), 413, 'PAYLOAD_TOO_LARGE', undefined, small);
    });

    it('a 64 KB chunked body (no Content-Length), over SYNC_MAX_BODY_BYTES → 413 PAYLOAD_TOO_LARGE', async () => {
      const bytes = new TextEncoder().encode(JSON.stringify({ changes: { ideas: { created: [{ id: 'big', text: longString(64_000) }] } } }));
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < bytes.length; i += 1024) c.enqueue(bytes.slice(i, i + 1024));
          c.close();
        },
      });
      await expectRejected(
        () =>
          send(`${small.url}/api/sync/push`, {
            method: 'POST',
            headers: { authorization: `Bearer ${small.token('alice')}`, 'content-type': 'application/json' },
            body: stream,
            duplex: 'half',
          } as RequestInit),
        413,
        'PAYLOAD_TOO_LARGE',
        undefined,
        small,
      );
    });

    it('an 11 MB body on the default server, over the default 10 MB SYNC_MAX_BODY_BYTES → 413 PAYLOAD_TOO_LARGE', async () => {
      const body = JSON.stringify({ changes: { ideas: { created: [{ id: 'big', text: longString(11 * 1024 * 1024) }] } } });
      await expectRejected(() => rawPush(server, body), 413, 'PAYLOAD_TOO_LARGE');
    });

    it('10,000 levels of nested arrays as the whole body, over SYNC_MAX_BODY_BYTES → 413', async () => {
      await expectRejected(() => rawPush(small, nestedArrays(10_000)), 413, 'PAYLOAD_TOO_LARGE', undefined, small);
    });
  });

  describe('deeply nested values (default limits)', () => {
    const record = (value: string, extra = '') => `{"changes":{"ideas":{"updated":[{"id":"ideas-1","text":${value}${extra}}]}}}`;

    it('10,000 levels of nested arrays as the whole body → 400', async () => {
      await rejectPush(nestedArrays(10_000));
    });

    it('10,000 levels of nested objects as the whole body → 400', async () => {
      await rejectPush(nestedObjects(10_000));
    });

    it('10,000 levels of nested arrays as a column value → 400 naming the column', async () => {
      await rejectPush(record(nestedArrays(10_000)), [{ table: 'ideas', id: 'ideas-1', column: 'text' }]);
    });

    it('10,000 levels of nested objects as a column value → 400 naming the column', async () => {
      await rejectPush(record(nestedObjects(10_000)), [{ table: 'ideas', id: 'ideas-1', column: 'text' }]);
    });

    it('10,000 levels of nested arrays under an unknown column, with a push_id → 400 naming the column', async () => {
      const body = `{"push_id":"deep-1","changes":{"ideas":{"updated":[{"id":"ideas-1","text":"ok","deep":${nestedArrays(10_000)}}]}}}`;
      await rejectPush(body, [{ table: 'ideas', id: 'ideas-1', column: 'deep' }]);
    });

    it('10,000 levels of nested arrays as a record → 400 naming the table', async () => {
      await rejectPush(`{"changes":{"ideas":{"created":[${nestedArrays(10_000)}]}}}`, [{ table: 'ideas' }]);
    });

    it('10,000 levels of nested arrays as "changes" → 400', async () => {
      await rejectPush(`{"changes":${nestedArrays(10_000)}}`, [{ column: 'changes' }]);
    });

    // Issue 20, item 8: a nested user_id got past the checks to JSON.stringify, which overflowed
    // the stack (500, and an error-level stack trace). Every field, both kinds of nesting.
    const DEEP = 10_000;
    const fields: Array<[string, (deep: string) => string, ExpectedDetail]> = [
      ['user_id', (d) => record('"ok"', `,"user_id":${d}`), { table: 'ideas', id: 'ideas-1', column: 'user_id' }],
      ['_status', (d) => record('"ok"', `,"_status":${d}`), { table: 'ideas', id: 'ideas-1', column: '_status' }],
      ['_changed', (d) => record('"ok"', `,"_changed":${d}`), { table: 'ideas', id: 'ideas-1', column: '_changed' }],
      ['last_modified_at', (d) => record('"ok"', `,"last_modified_at":${d}`), { table: 'ideas', id: 'ideas-1', column: 'last_modified_at' }],
      ['created_at', (d) => record('"ok"', `,"created_at":${d}`), { table: 'ideas', id: 'ideas-1', column: 'created_at' }],
      ['id', (d) => `{"changes":{"ideas":{"updated":[{"id":${d},"text":"ok"}]}}}`, { table: 'ideas', column: 'id' }],
      ['a deleted id', (d) => `{"changes":{"ideas":{"deleted":[${d}]}}}`, { table: 'ideas', column: 'id' }],
      ['push_id', (d) => `{"push_id":${d},"changes":{}}`, { column: 'push_id' }],
      ['last_pulled_at', (d) => `{"last_pulled_at":${d},"changes":{}}`, { column: 'last_pulled_at' }],
      ['a table entry', (d) => `{"changes":{"ideas":${d}}}`, { table: 'ideas' }],
      ['created', (d) => `{"changes":{"ideas":{"created":${d}}}}`, { table: 'ideas' }],
    ];
    for (const [field, body, detail] of fields) {
      for (const [kind, nest] of [['arrays', nestedArrays], ['objects', nestedObjects]] as const) {
        it(`${DEEP.toLocaleString('en')} levels of nested ${kind} as ${field} → 400 naming it`, async () => {
          await rejectPush(body(nest(DEEP)), [detail]);
        });
      }
    }

    it('1,000,000 levels of nested arrays as a column value → 400 naming the column', async () => {
      await rejectPush(record(nestedArrays(1_000_000)), [{ table: 'ideas', id: 'ideas-1', column: 'text' }]);
    });
  });

  // Issue 20, item 4: one detail per fault made a 209 KB body answer 4 MB (about 19 times its
  // size). The answer now lists the first 100 faults and says the list was cut; validation stops there.
  describe('the answer to a large invalid body is bounded', () => {
    const expectCapped = (answer: RawAnswer, bodyBytes: number) => {
      const error = answer.body.error;
      expect(error.details, 'details').to.have.length(100);
      expect(error.details_truncated, 'details_truncated').to.equal(true);
      expect(answer.text.length, `answer of ${answer.text.length} bytes to a body of ${bodyBytes}`).to.be.below(20_000);
    };

    it('one record with 20,000 unknown columns → 400 with the first 100 details and details_truncated', async () => {
      const rec: Record<string, unknown> = { id: 'ideas-1', text: 'ok' };
      for (let i = 0; i < 20_000; i++) rec[`c${i}`] = 1;
      const body = JSON.stringify({ changes: { ideas: { updated: [rec] } } });
      const answer = await rawPush(server, body);
      expectError(answer, 400, 'VALIDATION_FAILED');
      expectCapped(answer, body.length);
      expect(answer.body.error.details[0]).to.include({ table: 'ideas', id: 'ideas-1', column: 'c0' });
    });

    it('1,000 records each with 20 wrong values → 400 with the first 100 details and details_truncated', async () => {
      const records = Array.from({ length: 1000 }, (_, i) => Object.fromEntries([['id', `r${i}`], ...Array.from({ length: 20 }, (_, j) => [`bad${j}`, j])]));
      const body = JSON.stringify({ changes: { ideas: { created: records } } });
      const answer = await rawPush(server, body);
      expectError(answer, 400, 'VALIDATION_FAILED');
      expectCapped(answer, body.length);
    });

    it('1,000 records naming another user → 403 with the first 100 details and details_truncated', async () => {
      const records = Array.from({ length: 1000 }, (_, i) => ({ id: `r${i}`, text: 'x', user_id: 'someone-else' }));
      const body = JSON.stringify({ changes: { ideas: { created: records } } });
      const answer = await rawPush(server, body);
      expectError(answer, 403, 'FORBIDDEN');
      expectCapped(answer, body.length);
    });

    it('20,000 unknown top-level keys → 400 of bounded size', async () => {
      const top: Record<string, unknown> = { changes: {} };
      for (let i = 0; i < 20_000; i++) top[`k${i}`] = 1;
      const body = JSON.stringify(top);
      const answer = await rawPush(server, body);
      expectError(answer, 400, 'VALIDATION_FAILED');
      expect(answer.text.length, `answer of ${answer.text.length} bytes`).to.be.below(20_000);
    });

    it('20,000 unknown keys in a table entry → 400 of bounded size', async () => {
      const entry: Record<string, unknown> = {};
      for (let i = 0; i < 20_000; i++) entry[`k${i}`] = 1;
      const answer = await rawPush(server, JSON.stringify({ changes: { ideas: entry } }));
      expectError(answer, 400, 'VALIDATION_FAILED');
      expect(answer.text.length, `answer of ${answer.text.length} bytes`).to.be.below(20_000);
    });

    it('20,000 unknown tables → 400 with the first 100 details and details_truncated', async () => {
      const changes: Record<string, unknown> = {};
      for (let i = 0; i < 20_000; i++) changes[`t${i}`] = {};
      const body = JSON.stringify({ changes });
      const answer = await rawPush(server, body);
      expectError(answer, 400, 'VALIDATION_FAILED');
      expectCapped(answer, body.length);
    });

    it('100 faults exactly → all 100 listed, no details_truncated (the boundary)', async () => {
      const rec: Record<string, unknown> = { id: 'ideas-1', text: 'ok' };
      for (let i = 0; i < 100; i++) rec[`c${i}`] = 1;
      const answer = await rawPush(server, JSON.stringify({ changes: { ideas: { updated: [rec] } } }));
      expectError(answer, 400, 'VALIDATION_FAILED');
      expect(answer.body.error.details).to.have.length(100);
      expect(answer.body.error).not.to.have.property('details_truncated');
    });
  });

  describe('pull query parameters', () => {
    const cases: Array<[string, string]> = [
      ['last_pulled_at', 'last_pulled_at=abc'],
      ['last_pulled_at', 'last_pulled_at=-1'],
      ['last_pulled_at', 'last_pulled_at=1.5'],
      ['last_pulled_at', 'last_pulled_at=1e3'],
      ['last_pulled_at', 'last_pulled_at=1&last_pulled_at=2'],
      ['limit', 'limit=0'],
      ['limit', 'limit=-1'],
      ['limit', 'limit=abc'],
      ['limit', 'limit=1.5'],
      ['tables', 'tables=nope'],
      ['tables', 'tables=todos,nope'],
      ['tables', 'tables=__proto__'],
      ['tables', `tables=${encodeURIComponent("todos' OR '1'='1")}`],
      ['tables', `tables=${encodeURIComponent('captures;DROP TABLE todos')}`],
      ['tables', 'tables=sync_users'],
      // Issue 20, item 13: a list of only commas named no table and answered 500.
      ['tables', 'tables=,'],
      ['tables', 'tables=,,'],
      ['tables', `tables=${encodeURIComponent(' , ')}`],
      ['migration', 'migration=notjson'],
      ['migration', 'migration=%5B%5D'],
      ['migration', `migration=${encodeURIComponent('{"from":"x"}')}`],
      ['migration', `migration=${encodeURIComponent('{"from":1,"tables":["nope"]}')}`],
    ];
    for (const [param, query] of cases) {
      it(`GET /api/sync/pull?${decodeURIComponent(query)} → 400 naming ${param}`, async () => {
        await expectRejected(() => rawPull(server, query), 400, 'VALIDATION_FAILED', [{ column: param }]);
      });
    }
  });

  describe('X-Device-Id', () => {
    for (const [what, id] of [
      ['with a space', 'my phone'],
      ['of 129 characters', longString(129)],
      ['with a non-ASCII character', 't\u00e9l\u00e9phone'],
      ['with a tab', 'my\tphone'],
    ] as const) {
      it(`an X-Device-Id ${what} on push → 400 naming X-Device-Id`, async () => {
        await rejectPush(pushBody({}), [{ column: 'X-Device-Id' }], { 'x-device-id': id });
      });
      it(`an X-Device-Id ${what} on pull → 400 naming X-Device-Id`, async () => {
        await expectRejected(() => rawPull(server, 'last_pulled_at=0', { 'x-device-id': id }), 400, 'VALIDATION_FAILED', [{ column: 'X-Device-Id' }]);
      });
    }
  });
});
