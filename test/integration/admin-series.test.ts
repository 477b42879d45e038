import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { expectError, send, type RawAnswer } from '../support/http-helpers';
import { startTestServer, type TestServer } from '../support/server';

/**
 * GET /api/admin/sync/series (from the per-minute aggregates) and GET /api/admin/runtime, over
 * known rows of sync_logs: exact counts, failures, records and conflicts per bucket, and p50/p95
 * within the histogram's bound of the exact nearest-rank percentiles.
 */

const NOW = 1_750_000_020_000;
const MIN = 60_000;
const FROM = NOW - 10 * MIN;
/** Ten and a half minutes, widened to eleven: eleven whole buckets. */
const TO = FROM + 10.5 * MIN;

type Kind = [table: string, type: string, resolution: string, count: number];
interface Row {
  type: 'pull' | 'push';
  at: number;
  ms: number;
  failed?: boolean;
  records?: Record<string, number>;
  conflicts?: Kind[];
}

const rows: Row[] = [
  // outside [FROM, FROM + 11 min)
  { type: 'push', at: FROM - 1, ms: 999, conflicts: [['ideas', 'update_update', 'per_column', 1]] },
  { type: 'push', at: FROM + 11 * MIN, ms: 999, records: { captures: 50 }, conflicts: [['projects', 'update_update', 'per_column', 1]] },
  // bucket 0: four pulls (one failed) and a push, the first and last ms of the bucket
  { type: 'pull', at: FROM, ms: 10, records: { captures: 3, todos: 2 } },
  { type: 'pull', at: FROM + 1000, ms: 40, records: { captures: 1 } },
  { type: 'pull', at: FROM + 2000, ms: 20, failed: true },
  { type: 'pull', at: FROM + MIN - 1, ms: 30, records: {} },
  { type: 'push', at: FROM + 5000, ms: 100, records: { todos: 4, ideas: 1 }, conflicts: [['ideas', 'delete_update', 'delete_wins', 1], ['todos', 'update_update', 'per_column', 1]] },
  // bucket 1 starts exactly at FROM + MIN
  { type: 'push', at: FROM + MIN, ms: 7, failed: true },
  // bucket 3: two failed pushes, and one with a conflict
  { type: 'push', at: FROM + 3 * MIN + 10, ms: 5, failed: true },
  { type: 'push', at: FROM + 3 * MIN + 20, ms: 15, failed: true },
  { type: 'push', at: FROM + 3 * MIN + 30, ms: 2500, conflicts: [['todos', 'update_update', 'per_column', 1]] },
  // bucket 10: before TO, and at TO (inside, once `to` is widened to the minute)
  { type: 'pull', at: TO - 1, ms: 1, records: { projects: 6 } },
  { type: 'push', at: TO, ms: 3, conflicts: [['todos', 'update_delete', 'delete_wins', 1]] },
];

/** The exact p-th percentile by nearest rank: the smallest value with at least p of them at or below it. */
function nearestRank(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1]!;
}

/** The histogram's promise (docs/operations.md): exact under 20 ms, within 5 % above. */
function expectEstimate(got: number | null, values: number[], p: number, label: string): void {
  const exact = nearestRank(values, p);
  if (exact === null) return void expect(got, label).to.equal(null);
  if (exact < 20) return void expect(got, label).to.equal(exact);
  expect(got, label).to.be.a('number');
  expect(Math.abs(got! - exact), `${label}: ${got} for ${exact}`).to.be.at.most(0.05 * exact);
}

/** Every bucket's figures against the rows that started in it. */
function expectBuckets(body: any, from: number, bucket: number, count: number): void {
  expect(body.to - from).to.be.at.most(count * bucket);
  expect(body.buckets.map((b: any) => b.start)).to.deep.equal(Array.from({ length: count }, (_, i) => from + i * bucket));
  for (const b of body.buckets) {
    for (const type of ['pull', 'push'] as const) {
      const inside = rows.filter((r) => r.type === type && r.at >= b.start && r.at < Math.min(b.start + bucket, body.to));
      const label = `${type} at ${b.start}`;
      expect(b[type].count, label).to.equal(inside.length);
      expect(b[type].failures, label).to.equal(inside.filter((r) => r.failed).length);
      expect(b[type].records, label).to.equal(inside.reduce((a, r) => a + Object.values(r.records ?? {}).reduce((x, y) => x + y, 0), 0));
      expectEstimate(b[type].p50_duration_ms, inside.map((r) => r.ms), 0.5, `${label} p50`);
      expectEstimate(b[type].p95_duration_ms, inside.map((r) => r.ms), 0.95, `${label} p95`);
    }
  }
}

interface Figures {
  count: number;
  failures: number;
  p50_duration_ms: number | null;
  p95_duration_ms: number | null;
  records: number;
}
const none: Figures = { count: 0, failures: 0, p50_duration_ms: null, p95_duration_ms: null, records: 0 };

describeEachDatabase('admin sync series', (ctx) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db, {}, { clock: { now: () => NOW } });
  });
  after(() => server.close());

  async function seed(): Promise<void> {
    await ctx.database.db('sync_logs').insert(
      rows.map((r, i) => {
        const records = r.records ?? {};
        return {
          user_id: `user-${i % 3}`,
          sync_type: r.type,
          started_at: r.at,
          completed_at: r.at + r.ms,
          duration_ms: r.ms,
          records_synced: Object.values(records).reduce((a, b) => a + b, 0),
          records_by_table: JSON.stringify(records),
          conflicts: (r.conflicts ?? []).length,
          conflicts_by_kind: r.conflicts ? JSON.stringify(r.conflicts.map(([entity, conflict_type, resolution_strategy, count]) => ({ entity, conflict_type, resolution_strategy, count }))) : null,
          bytes_in: 0,
          bytes_out: 0,
          status: r.failed ? 'failure' : 'success',
          error_code: r.failed ? 'VALIDATION_FAILED' : null,
          error_message: r.failed ? 'bad record' : null,
          request_id: `seed-${i}`,
        };
      }),
    );
  }

  const series = (query: string, admin = true): Promise<RawAnswer> =>
    send(`${server.url}/api/admin/sync/series${query}`, { headers: { authorization: `Bearer ${server.token('ops', { admin })}` } });

  it('counts, failures, p50/p95 (from the histogram) and records per bucket of [from, to) widened to whole minutes, every bucket present', async () => {
    await seed();
    const r = await series(`?from=${FROM}&to=${TO}&bucket=${MIN}`);
    expect(r.status, r.text).to.equal(200);
    expect([r.body.from, r.body.to, r.body.bucket_ms]).to.deep.equal([FROM, FROM + 11 * MIN, MIN]);
    expectBuckets(r.body, FROM, MIN, 11);
    // The data exercises what is compared: empty buckets, failures, estimates under and over 20 ms.
    expect(r.body.buckets[0].pull).to.include({ count: 4, failures: 1, p50_duration_ms: 20.98, records: 6 });
    expect(r.body.buckets[2]).to.deep.equal({ start: FROM + 2 * MIN, pull: none, push: none });
    expect(r.body.buckets[3].push).to.include({ count: 3, failures: 2, p50_duration_ms: 15 });
    expect(r.body.buckets[10].push).to.include({ count: 1, p50_duration_ms: 3, p95_duration_ms: 3 });
    expect(r.body.records_by_table).to.deep.equal([
      { table: 'captures', pulled: 4, pushed: 0 },
      { table: 'ideas', pulled: 0, pushed: 1 },
      { table: 'projects', pulled: 6, pushed: 0 },
      { table: 'todos', pulled: 2, pushed: 4 },
    ]);
    expect(r.body.conflicts).to.deep.equal([
      { table: 'ideas', type: 'delete_update', resolution: 'delete_wins', count: 1 },
      { table: 'todos', type: 'update_delete', resolution: 'delete_wins', count: 1 },
      { table: 'todos', type: 'update_update', resolution: 'per_column', count: 2 },
    ]);
  });

  it('buckets count from `from`, whatever their size: 5-minute buckets of the same rows', async () => {
    await seed();
    const r = await series(`?from=${FROM}&to=${TO}&bucket=${5 * MIN}`);
    expect(r.status, r.text).to.equal(200);
    expect(r.body.buckets.map((b: any) => [b.start, b.pull.count, b.pull.failures, b.push.count, b.push.failures])).to.deep.equal([
      [FROM, 4, 1, 5, 3],
      [FROM + 5 * MIN, 0, 0, 0, 0],
      [FROM + 10 * MIN, 1, 0, 1, 0],
    ]);
    expectBuckets(r.body, FROM, 5 * MIN, 3);
    // pushes 100, 7, 5, 15, 2500 ms: p50 the third, 15 (exact); p95 the fifth, 2500 (within 5 %)
    expect(r.body.buckets[0].push.p50_duration_ms).to.equal(15);
    expect(r.body.buckets[0].push.p95_duration_ms).to.be.within(2500 * 0.95, 2500 * 1.05);
  });

  it('widens a window to whole minutes: from rounded down, to rounded up', async () => {
    await seed();
    const r = await series(`?from=${FROM + 1}&to=${FROM + MIN + 1}&bucket=${MIN}`);
    expect(r.status, r.text).to.equal(200);
    expect([r.body.from, r.body.to, r.body.buckets.length]).to.deep.equal([FROM, FROM + 2 * MIN, 2]);
    // The rows of the first minute before from + 1 are counted: a minute is counted whole.
    expect(r.body.buckets[0].pull.count).to.equal(4);
    expectBuckets(r.body, FROM, MIN, 2);
  });

  it('defaults to the hour before now (the injected clock) in 1-minute buckets', async () => {
    await seed();
    const r = await series('');
    expect(r.status, r.text).to.equal(200);
    expect([r.body.from, r.body.to, r.body.bucket_ms, r.body.buckets.length]).to.deep.equal([NOW - 60 * MIN, NOW, MIN, 60]);
    // Every seeded row before NOW is in the hour, but not the one at TO (after NOW).
    const counted = r.body.buckets.reduce((a: number, b: any) => a + b.pull.count + b.push.count, 0);
    expect(counted).to.equal(rows.filter((x) => x.at >= NOW - 60 * MIN && x.at < NOW).length);
    expect(counted).to.equal(10);
  });

  it('answers 1440 buckets, the most it allows', async () => {
    const r = await series(`?from=0&to=${1440 * MIN}&bucket=${MIN}`);
    expect(r.status, r.text).to.equal(200);
    expect(r.body.buckets).to.have.length(1440);
    expect(r.body.buckets[1439]).to.deep.equal({ start: 1439 * MIN, pull: none, push: none });
  });

  const bad: Array<[string, string, string]> = [
    ['from not a number', '?from=yesterday', 'from'],
    ['negative to', `?to=-5`, 'to'],
    ['fractional bucket', '?bucket=1.5', 'bucket'],
    ['from twice', `?from=1&from=2&to=${MIN}`, 'from'],
    ['bucket under a minute', `?from=0&to=${MIN}&bucket=59999`, 'bucket'],
    ['bucket of a second, allowed before the figures were kept per minute', `?from=0&to=${MIN}&bucket=1000`, 'bucket'],
    ['bucket not a whole number of minutes', `?from=0&to=${10 * MIN}&bucket=90000`, 'bucket'],
    ['bucket zero', `?from=0&to=${MIN}&bucket=0`, 'bucket'],
    ['bucket over a day', `?from=0&to=${3 * 86_400_000}&bucket=86400001`, 'bucket'],
    ['from equal to to', `?from=${FROM}&to=${FROM}`, 'from'],
    ['from after to', `?from=${FROM + 1}&to=${FROM}`, 'from'],
    ['1441 buckets', `?from=0&to=${1440 * MIN + 1}&bucket=${MIN}`, 'bucket'],
    ['a week by the minute', `?from=0&to=${7 * 86_400_000}&bucket=${MIN}`, 'bucket'],
  ];
  for (const [what, query, column] of bad) {
    it(`refuses ${what} (${query}) with 400 VALIDATION_FAILED naming ${column}`, async () => {
      const details = expectError(await series(query), 400, 'VALIDATION_FAILED');
      expect(details.map((d: any) => d.column)).to.include(column);
    });
  }

  it('is for admins: a user token gets 403 FORBIDDEN, no token 401', async () => {
    expectError(await series('', false), 403, 'FORBIDDEN');
    expectError(await send(`${server.url}/api/admin/sync/series`), 401, 'TOKEN_MISSING');
  });

  it("runtime: this process's database pool for an admin, 403 for anyone else", async () => {
    const r = await send(`${server.url}/api/admin/runtime`, { headers: { authorization: `Bearer ${server.token('ops', { admin: true })}` } });
    expect(r.status, r.text).to.equal(200);
    expect(Object.keys(r.body)).to.deep.equal(['pool']);
    const pool = (ctx.database.db.client as { pool: { max: number } }).pool;
    expect(r.body.pool.max).to.equal(pool.max);
    expect(r.body.pool.used + r.body.pool.free).to.be.at.most(pool.max);
    expect(r.body.pool.pending).to.be.at.least(0);
    expectError(await send(`${server.url}/api/admin/runtime`, { headers: { authorization: `Bearer ${server.token('ops')}` } }), 403, 'FORBIDDEN');
    expectError(await send(`${server.url}/api/admin/runtime`), 401, 'TOKEN_MISSING');
  });
});
