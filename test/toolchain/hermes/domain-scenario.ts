/**
 * A domain scenario that prints one JSON document: push validation of good and bad bodies, the
 * conflict decision of every row of the policy in src/domain/conflicts.ts, and the retry delays.
 * hermes-domain.test.ts bundles it, lowers it with React Native's Babel preset, and runs it under
 * the Hermes CLI and under Node: both must print the same bytes. No Node or engine-specific API.
 */
import { MAX_RETRY_DELAY_MS, TABLES, decide, retryDelayMs, tableSpec, validatePush, type PushedChange, type ServerRow } from '../../../src/domain';

declare const print: ((s: string) => void) | undefined;

const limits = { maxRecords: 5, maxRecordBytes: 400 };
const user = 'user-1';
const capture = (id: string, extra: Record<string, unknown> = {}) => ({ id, type: 'text', raw_content: `note ${id}`, tags: '["a"]', ...extra });

const pushBodies: Record<string, unknown> = {
  good: { last_pulled_at: 1000, push_id: 'p-1', changes: { todos: { created: [{ id: 't1', description: 'buy milk', state: 'todo', deadline: 1700000000000 }] }, captures: { created: [capture('c1')], updated: [capture('c2', { _changed: 'raw_content,state' })], deleted: ['c3'] } } },
  good_first_push: { last_pulled_at: null, changes: { captures: { created: [capture('c4', { created_at: 1700000000000, _status: 'created', last_modified_at: null })] } } },
  good_unicode: { last_pulled_at: 5, changes: { captures: { created: [capture('é-😀', { raw_content: 'naïve café 😀' })] } } },
  not_an_object: 'changes',
  no_changes: { last_pulled_at: 1 },
  bad_last_pulled_at: { last_pulled_at: 'yesterday', changes: {} },
  unknown_table: { last_pulled_at: 1, changes: { secrets: { created: [{ id: 's1' }] } } },
  unknown_column: { last_pulled_at: 1, changes: { captures: { created: [capture('c5', { colour: 'red' })] } } },
  wrong_type: { last_pulled_at: 1, changes: { captures: { created: [capture('c6', { type: 'video', duration_ms: 'long' })] } } },
  lone_surrogate_id: { last_pulled_at: 1, changes: { captures: { created: [capture('bad\ud800id')] } } },
  duplicate_id: { last_pulled_at: 1, changes: { captures: { created: [capture('c7')], deleted: ['c7'] } } },
  too_many_records: { last_pulled_at: 1, changes: { captures: { deleted: ['a', 'b', 'c', 'd', 'e', 'f'] } } },
  record_too_large: { last_pulled_at: 1, changes: { captures: { created: [capture('c8', { raw_content: 'x'.repeat(500) })] } } },
  other_users_record: { last_pulled_at: 1, changes: { captures: { created: [capture('c9', { user_id: 'user-2' })] } } },
};

const push = Object.fromEntries(
  Object.entries(pushBodies).map(([name, body]) => {
    const r = validatePush(body, user, limits);
    return [
      name,
      r.isOk()
        ? { ok: { lastPulledAt: r.value.lastPulledAt, pushId: r.value.pushId, recordCount: r.value.recordCount, tables: r.value.tables.map((t) => ({ table: t.table.name, upserts: t.upserts, deletes: t.deletes })) } }
        : { err: r.error },
    ];
  }),
);

// Every row of the policy: delete vs (no row | deleted row | unchanged row | row changed by
// another device | row the pusher wrote), upsert vs the same, with and without `_changed`.
const captures = tableSpec('captures')!;
const serverValues = { id: 'r1', type: 'text', raw_content: 'server text', state: 'ready', tags: '[]', project_id: 'p1', duration_ms: null, normalized_text: 'server text' };
const rows: Record<string, ServerRow | undefined> = {
  none: undefined,
  deleted: { values: serverValues, deleted: true, lastModifiedAt: 2000, writtenByPusher: false },
  unchanged_since_pull: { values: serverValues, deleted: false, lastModifiedAt: 900, writtenByPusher: false },
  changed_by_other: { values: serverValues, deleted: false, lastModifiedAt: 2000, writtenByPusher: false },
  changed_by_pusher: { values: serverValues, deleted: false, lastModifiedAt: 2000, writtenByPusher: true },
};
const changes: Record<string, PushedChange> = {
  delete: { kind: 'delete', id: 'r1' },
  upsert_changed_listed: { kind: 'upsert', record: { id: 'r1', values: { raw_content: 'my text', state: 'captured', project_id: 'p2' }, changed: ['raw_content', 'state'] } },
  upsert_no_changed: { kind: 'upsert', record: { id: 'r1', values: { raw_content: 'my text', state: 'failed' }, changed: null } },
};
const decisions: Array<{ change: string; row: string; lastPulledAt: number | null; decision: unknown }> = [];
for (const [change, c] of Object.entries(changes)) {
  for (const [row, r] of Object.entries(rows)) {
    for (const lastPulledAt of [1000, null]) decisions.push({ change, row, lastPulledAt, decision: decide(captures, c, r, lastPulledAt) });
  }
}

const backoff = {
  max: MAX_RETRY_DELAY_MS,
  delays: [-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 50, 1.5, Number.NaN].map((attempt) => [String(attempt), retryDelayMs(attempt)]),
  capped: [1, 5, 10, 11].map((attempt) => retryDelayMs(attempt, 4000)),
};

const out = JSON.stringify({ tables: TABLES.map((t) => t.name), push, decisions, backoff });
if (typeof print === 'function') print(out);
else console.log(out);
