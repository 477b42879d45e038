import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { expectError, send, type RawAnswer } from '../support/http-helpers';
import { startTestServer, type TestServer } from '../support/server';

/**
 * GET /api/admin/sync/series (bucketed in SQL) and GET /api/admin/runtime, over known rows of
 * sync_logs and sync_conflicts: exact counts, failures, percentiles and records per bucket.
 */

const NOW = 1_750_000_020_000;
const MIN = 60_000;
const FROM = NOW - 10 * MIN;
/** Ten and a half minutes: eleven buckets, the last one half a minute long. */
const TO = FROM + 10.5 * MIN;

interface Row {
  type: 'pull' | 'push';
  at: number;
  ms: number;
  failed?: boolean;
  records?: Record<string, number>;
}

const rows: Row[] = [
  // outside [FROM, TO)
  { type: 'pull', at: FROM - 1, ms: 999 },
  { type: 'push', at: TO, ms: 999, records: { captures: 50 } },
  // bucket 0: four pulls (one failed) and a push, the first and last ms of the bucket
  { type: 'pull', at: FROM, ms: 10, records: { captures: 3, todos: 2 } },
  { type: 'pull', at: FROM + 1000, ms: 40, records: { captures: 1 } },
  { type: 'pull', at: FROM + 2000, ms: 20, failed: true },
  { type: 'pull', at: FROM + MIN - 1, ms: 30, records: {} },
  { type: 'push', at: FROM + 5000, ms: 100, records: { todos: 4, ideas: 1 } },
  // bucket 1 starts exactly at FROM + MIN
  { type: 'push', at: FROM + MIN, ms: 7, failed: true },
  // bucket 3: two failed pushes
  { type: 'push', at: FROM + 3 * MIN + 10, ms: 5, failed: true },
  { type: 'push', at: FROM + 3 * MIN + 20, ms: 15, failed: true },
  // bucket 10, the short last one
  { type: 'pull', at: TO - 1, ms: 1, records: { projects: 6 } },
];

const conflicts = [
  { entity: 'todos', conflict_type: 'update_update', resolution_strategy: 'per_column', resolved_at: FROM },
  { entity: 'todos', conflict_type: 'update_update', resolution_strategy: 'per_column', resolved_at: FROM + 3 * MIN },
  { entity: 'todos', conflict_type: 'update_delete', resolution_strategy: 'delete_wins', resolved_at: TO - 1 },
  { entity: 'ideas', conflict_type: 'delete_update', resolution_strategy: 'delete_wins', resolved_at: FROM + 1 },
  { entity: 'ideas', conflict_type: 'update_update', resolution_strategy: 'per_column', resolved_at: FROM - 1 },
  { entity: 'projects', conflict_type: 'update_update', resolution_strategy: 'per_column', resolved_at: TO },
];

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
          conflicts: 0,
          bytes_in: 0,
          bytes_out: 0,
          status: r.failed ? 'failure' : 'success',
          error_code: r.failed ? 'VALIDATION_FAILED' : null,
          error_message: r.failed ? 'bad record' : null,
          request_id: `seed-${i}`,
        };
      }),
    );
    await ctx.database.db('sync_conflicts').insert(conflicts.map((c, i) => ({ ...c, user_id: 'u', record_id: `r${i}`, client_columns: '[]', server_columns: '[]' })));
  }

  const series = (query: string, admin = true): Promise<RawAnswer> =>
    send(`${server.url}/api/admin/sync/series${query}`, { headers: { authorization: `Bearer ${server.token('ops', { admin })}` } });

  it('counts, failures, p50/p95 (percentile_cont) and records per bucket of [from, to), every bucket present', async () => {
    await seed();
    const r = await series(`?from=${FROM}&to=${TO}&bucket=${MIN}`);
    expect(r.status, r.text).to.equal(200);
    const expected: Array<{ start: number; pull: Figures; push: Figures }> = Array.from({ length: 11 }, (_, i) => ({ start: FROM + i * MIN, pull: none, push: none }));
    // pulls 10, 40, 20, 30 ms: p50 25; p95 at rank 2.85 of the sorted four: 30 + 0.85 × 10
    expected[0] = { start: FROM, pull: { count: 4, failures: 1, p50_duration_ms: 25, p95_duration_ms: 38.5, records: 6 }, push: { count: 1, failures: 0, p50_duration_ms: 100, p95_duration_ms: 100, records: 5 } };
    expected[1] = { start: FROM + MIN, pull: none, push: { count: 1, failures: 1, p50_duration_ms: 7, p95_duration_ms: 7, records: 0 } };
    // 5 and 15 ms: p50 10, p95 5 + 0.95 × 10
    expected[3] = { start: FROM + 3 * MIN, pull: none, push: { count: 2, failures: 2, p50_duration_ms: 10, p95_duration_ms: 14.5, records: 0 } };
    expected[10] = { start: FROM + 10 * MIN, pull: { count: 1, failures: 0, p50_duration_ms: 1, p95_duration_ms: 1, records: 6 }, push: none };
    expect(r.body).to.deep.equal({
      from: FROM,
      to: TO,
      bucket_ms: MIN,
      buckets: expected,
      records_by_table: [
        { table: 'captures', pulled: 4, pushed: 0 },
        { table: 'ideas', pulled: 0, pushed: 1 },
        { table: 'projects', pulled: 6, pushed: 0 },
        { table: 'todos', pulled: 2, pushed: 4 },
      ],
      conflicts: [
        { table: 'ideas', type: 'delete_update', resolution: 'delete_wins', count: 1 },
        { table: 'todos', type: 'update_delete', resolution: 'delete_wins', count: 1 },
        { table: 'todos', type: 'update_update', resolution: 'per_column', count: 2 },
      ],
    });
  });

  it('buckets count from `from`, whatever their size: 5-minute buckets of the same rows', async () => {
    await seed();
    const r = await series(`?from=${FROM}&to=${TO}&bucket=${5 * MIN}`);
    expect(r.status, r.text).to.equal(200);
    expect(r.body.buckets.map((b: any) => [b.start, b.pull.count, b.pull.failures, b.push.count, b.push.failures])).to.deep.equal([
      [FROM, 4, 1, 4, 3],
      [FROM + 5 * MIN, 0, 0, 0, 0],
      [FROM + 10 * MIN, 1, 0, 0, 0],
    ]);
    // pushes 100, 7, 5, 15 ms: p50 11; p95 at rank 2.85: 15 + 0.85 × 85
    expect(r.body.buckets[0].push.p50_duration_ms).to.equal(11);
    expect(r.body.buckets[0].push.p95_duration_ms).to.be.closeTo(87.25, 1e-9);
  });

  it('defaults to the hour before now (the injected clock) in 1-minute buckets', async () => {
    await seed();
    const r = await series('');
    expect(r.status, r.text).to.equal(200);
    expect([r.body.from, r.body.to, r.body.bucket_ms, r.body.buckets.length]).to.deep.equal([NOW - 60 * MIN, NOW, MIN, 60]);
    // Every seeded row before NOW is in the hour, but not the one at TO (after NOW).
    const counted = r.body.buckets.reduce((a: number, b: any) => a + b.pull.count + b.push.count, 0);
    expect(counted).to.equal(rows.filter((x) => x.at >= NOW - 60 * MIN && x.at < NOW).length);
    expect(counted).to.equal(9);
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
    ['bucket under a second', `?from=0&to=${MIN}&bucket=999`, 'bucket'],
    ['bucket zero', `?from=0&to=${MIN}&bucket=0`, 'bucket'],
    ['bucket over a day', `?from=0&to=${3 * 86_400_000}&bucket=86400001`, 'bucket'],
    ['from equal to to', `?from=${FROM}&to=${FROM}`, 'from'],
    ['from after to', `?from=${FROM + 1}&to=${FROM}`, 'from'],
    ['1441 buckets', `?from=0&to=${1440 * MIN + 1}&bucket=${MIN}`, 'bucket'],
    ['a week by the second', `?from=0&to=${7 * 86_400_000}&bucket=1000`, 'bucket'],
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
