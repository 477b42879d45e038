import { expect } from 'chai';
import type { Knex } from 'knex';
import { snapshotAll } from './server';

/** An HTTP answer whose body may not be JSON (or may be an error page): the text is kept. */
export interface RawAnswer {
  readonly status: number;
  readonly text: string;
  readonly body: any;
  readonly headers: Headers;
}

/** Sends one request as any HTTP client would, without the conveniences of ApiClient. */
export async function send(url: string, init: RequestInit = {}): Promise<RawAnswer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, text, body, headers: res.headers };
}

export interface ExpectedDetail {
  readonly table?: string;
  readonly id?: string;
  readonly column?: string;
  /** A pattern the reason must match; by default any non-empty reason. */
  readonly reason?: RegExp;
}

/**
 * Asserts the one error shape of spec §4 — `{ error: { code, message, details? } }`, JSON, and
 * nothing else (no stack, no SQL) — and returns `details`.
 */
export function expectError(answer: { status: number; body: any; headers: Headers; text?: string }, status: number, code: string): any {
  const shown = answer.text ?? JSON.stringify(answer.body);
  expect(answer.status, `status for ${shown}`).to.equal(status);
  expect(answer.headers.get('content-type') ?? '', shown).to.match(/^application\/json/);
  expect(answer.body, shown).to.be.an('object');
  expect(Object.keys(answer.body), shown).to.deep.equal(['error']);
  const error = answer.body.error;
  expect(error.code, shown).to.equal(code);
  expect(error.message, shown).to.be.a('string').that.is.not.empty;
  expect(Object.keys(error).filter((k) => !['code', 'message', 'details', 'details_truncated'].includes(k)), shown).to.deep.equal([]);
  if ('details_truncated' in error) expect(error.details_truncated, shown).to.equal(true);
  // The message is the server's own words: never a stack frame or an SQL statement.
  expect(error.message).not.to.match(/\bat .+\.(ts|js):\d+|\bselect\b.+\bfrom\b|\binsert into\b|\bsyntax error\b/i);
  return error.details;
}

/** Asserts that `details` is a list of entries and that each expected entry is among them. */
export function expectDetails(details: any, expected: readonly ExpectedDetail[]): void {
  expect(details, 'details').to.be.an('array').that.is.not.empty;
  for (const d of details) {
    expect(d, JSON.stringify(details)).to.be.an('object');
    expect(d.reason, JSON.stringify(details)).to.be.a('string').that.is.not.empty;
  }
  for (const want of expected) {
    const found = (details as any[]).some(
      (d) =>
        (want.table === undefined || d.table === want.table) &&
        (want.id === undefined || d.id === want.id) &&
        (want.column === undefined || d.column === want.column) &&
        (want.reason === undefined || want.reason.test(d.reason)),
    );
    expect(found, `a detail like ${JSON.stringify({ ...want, reason: want.reason?.source })} in ${JSON.stringify(details)}`).to.equal(true);
  }
}

/** Every synced and bookkeeping table, the per-user stamp table included. */
export async function snapshotDb(db: Knex): Promise<Record<string, any[]>> {
  return { ...(await snapshotAll(db)), sync_users: await db('sync_users').select('*').orderBy('user_id') };
}

export async function expectHealthy(baseUrl: string): Promise<void> {
  const r = await send(`${baseUrl}/healthz`);
  expect(r.status, r.text).to.equal(200);
  expect(r.body).to.deep.equal({ status: 'ok' });
}

export function base64url(value: string | Buffer | object): string {
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
  return buf.toString('base64url');
}

/** A JSON body text nesting `depth` arrays around `inner`, without recursion (JSON.stringify would overflow the stack). */
export function nestedArrays(depth: number, inner = '1'): string {
  return `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
}

export function nestedObjects(depth: number, inner = '1'): string {
  return `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}`;
}

/** An object with `key` as its own enumerable property, also for `__proto__`, so JSON.stringify sends it. */
export function withOwnKey<T extends object>(target: T, key: string, value: unknown): T {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  return target;
}
