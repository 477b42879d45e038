import { expect } from 'chai';
import { KnexSyncLogStore } from '../../src/adapters/postgres/knex-sync-log';
import type { SyncLogEntry } from '../../src/application/ports';
import { describeEachDatabase } from '../support/databases';

/**
 * Several server processes on one PostgreSQL flush their sync logs at the same time. Their batches
 * name the same users in different orders; the streak upserts must not deadlock (a deadlock threw
 * the whole batch away), nor may the per-minute figures' upserts, which batches spanning the same
 * minutes make too. PostgreSQL only: PGlite has one connection, so flushes never overlap.
 */
describeEachDatabase('sync log flushes from several processes', (ctx, name) => {
  const entry = (userId: string, status: 'success' | 'failure', at: number): SyncLogEntry => ({
    userId,
    syncType: 'push',
    startedAt: at,
    completedAt: at,
    durationMs: 1,
    recordsSynced: 1,
    recordsByTable: { todos: 1 },
    conflicts: 1,
    conflictsByKind: [{ table: 'todos', type: 'update_update', resolution: 'per_column', count: 1 }],
    bytesIn: 10,
    bytesOut: 10,
    status,
    errorCode: status === 'failure' ? 'SERVER_ERROR' : null,
    errorMessage: null,
    deviceId: 'd',
    appVersion: null,
    schemaVersion: 1,
    requestId: null,
  });

  it('writes every entry when batches with the same users in opposite orders are flushed at once', async function () {
    if (name !== 'postgres') this.skip(); // one connection: flushes cannot overlap, so cannot deadlock
    this.timeout(60_000);
    const pools = [ctx.database.openAnother!(), ctx.database.openAnother!()];
    try {
      const stores = pools.map((db) => new KnexSyncLogStore(db));
      const users = Array.from({ length: 30 }, (_, i) => `flush-u${String(i).padStart(2, '0')}`);
      let batches = 0;
      for (let round = 0; round < 10; round++) {
        // Ten minutes per batch, one in its users' order, one in the reverse.
        const forward = users.map((u, i) => entry(u, i % 3 ? 'success' : 'failure', round * 100 + i * 20_000));
        const backward = [...users].reverse().map((u, i) => entry(u, 'failure', round * 100 + i * 20_000));
        const results = await Promise.all([stores[0]!.append(forward), stores[1]!.append(backward), stores[0]!.append(backward), stores[1]!.append(forward)]);
        for (const r of results) expect(r.isOk(), r.isErr() ? r.error.message : '').to.equal(true);
        batches += 4;
      }
      const [counted] = await ctx.database.db('sync_logs').whereIn('user_id', users).count({ n: '*' });
      expect(Number(counted?.n)).to.equal(batches * users.length);
      const [figures] = await ctx.database.db('sync_stats_minutes').sum({ n: 'count' });
      const [conflicts] = await ctx.database.db('sync_stats_conflicts').sum({ n: 'count' });
      expect([Number(figures?.n), Number(conflicts?.n)]).to.deep.equal([batches * users.length, batches * users.length]);
    } finally {
      for (const p of pools) await p.destroy();
    }
  });
});
