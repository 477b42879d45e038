import type { Knex } from 'knex';

/**
 * Admin statistics from per-minute aggregates, so that `/api/admin/sync/stats` and `/series` read
 * a few rows per minute instead of every `sync_logs` row of their window (docs/operations.md,
 * "How the figures are kept").
 *
 * - `sync_stats_minutes`: per minute (the epoch-ms start of the minute a sync started in) and sync
 *   type, the count, failures and the sums of duration, records and bytes;
 * - `sync_stats_durations`: the same minutes' durations as a histogram: buckets of one
 *   millisecond under 20 ms, then buckets 10 % wide (`sync_duration_bucket`), from which p50 and
 *   p95 are read;
 * - `sync_stats_tables`: records per minute, type and table;
 * - `sync_stats_conflicts`: conflicts the server resolved, per minute, table, type and resolution.
 *
 * They are kept by an AFTER INSERT … FOR EACH STATEMENT trigger on `sync_logs`, in the
 * transaction that writes the log batch (one upsert per aggregate table per batch, off the
 * request path). Conflicts travel in the log row (`conflicts_by_kind`), so the push itself writes
 * nothing more than before: a per-minute row upserted by every push with a conflict would be one
 * row all pushes wait on until they commit, and on Citus a second node in every such push.
 * Existing rows are added once here (conflicts of the past from `sync_conflicts`).
 */
export const MINUTE_MS = 60_000;

/** The upserts of the aggregates from the log rows of `source` (the trigger's new rows, or all). */
function addFrom(source: string): string[] {
  const minute = `(l.started_at - l.started_at % ${MINUTE_MS})`;
  // Each in key order: two batches flushed at once by two processes then lock the same minute
  // rows in the same order instead of deadlocking.
  return [
    `INSERT INTO sync_stats_minutes AS s (minute_start, sync_type, count, failures, sum_duration_ms, records, bytes_in, bytes_out)
       SELECT ${minute}, l.sync_type, count(*), count(*) FILTER (WHERE l.status = 'failure'), sum(l.duration_ms), sum(l.records_synced), sum(l.bytes_in), sum(l.bytes_out)
         FROM ${source} l GROUP BY 1, 2 ORDER BY 1, 2
     ON CONFLICT (minute_start, sync_type) DO UPDATE SET count = s.count + EXCLUDED.count, failures = s.failures + EXCLUDED.failures,
       sum_duration_ms = s.sum_duration_ms + EXCLUDED.sum_duration_ms, records = s.records + EXCLUDED.records,
       bytes_in = s.bytes_in + EXCLUDED.bytes_in, bytes_out = s.bytes_out + EXCLUDED.bytes_out`,
    `INSERT INTO sync_stats_durations AS s (minute_start, sync_type, bucket, count)
       SELECT ${minute}, l.sync_type, sync_duration_bucket(l.duration_ms), count(*) FROM ${source} l GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
     ON CONFLICT (minute_start, sync_type, bucket) DO UPDATE SET count = s.count + EXCLUDED.count`,
    `INSERT INTO sync_stats_tables AS s (minute_start, sync_type, table_name, records)
       SELECT ${minute}, l.sync_type, t.key, sum(t.value::bigint) FROM ${source} l, jsonb_each_text(l.records_by_table) t GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
     ON CONFLICT (minute_start, sync_type, table_name) DO UPDATE SET records = s.records + EXCLUDED.records`,
    `INSERT INTO sync_stats_conflicts AS s (minute_start, entity, conflict_type, resolution_strategy, count)
       SELECT ${minute}, c.entity, c.conflict_type, c.resolution_strategy, sum(c.count)
         FROM ${source} l, jsonb_to_recordset(l.conflicts_by_kind) AS c(entity text, conflict_type text, resolution_strategy text, count bigint)
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
     ON CONFLICT (minute_start, entity, conflict_type, resolution_strategy) DO UPDATE SET count = s.count + EXCLUDED.count`,
  ];
}

export async function up(knex: Knex): Promise<void> {
  // [{entity, conflict_type, resolution_strategy, count}] of a push; null for rows written before.
  await knex.schema.alterTable('sync_logs', (t) => t.jsonb('conflicts_by_kind').nullable());
  const minuteKey = (t: Knex.CreateTableBuilder) => {
    t.bigInteger('minute_start').notNullable();
    t.text('sync_type').notNullable();
  };
  await knex.schema.createTable('sync_stats_minutes', (t) => {
    minuteKey(t);
    for (const c of ['count', 'failures', 'sum_duration_ms', 'records', 'bytes_in', 'bytes_out']) t.bigInteger(c).notNullable();
    t.primary(['minute_start', 'sync_type']);
  });
  await knex.schema.createTable('sync_stats_durations', (t) => {
    minuteKey(t);
    t.smallint('bucket').notNullable();
    t.bigInteger('count').notNullable();
    t.primary(['minute_start', 'sync_type', 'bucket']);
  });
  await knex.schema.createTable('sync_stats_tables', (t) => {
    minuteKey(t);
    t.text('table_name').notNullable();
    t.bigInteger('records').notNullable();
    t.primary(['minute_start', 'sync_type', 'table_name']);
  });
  await knex.schema.createTable('sync_stats_conflicts', (t) => {
    t.bigInteger('minute_start').notNullable();
    t.text('entity').notNullable();
    t.text('conflict_type').notNullable();
    t.text('resolution_strategy').notNullable();
    t.bigInteger('count').notNullable();
    t.primary(['minute_start', 'entity', 'conflict_type', 'resolution_strategy']);
  });
  // Under 20 ms one bucket per ms (exact); from 20 ms, bucket 20 + k holds [20·1.1^k, 20·1.1^(k+1)).
  // int4 durations end below bucket 215, well inside a smallint.
  await knex.raw(`
    CREATE FUNCTION sync_duration_bucket(ms integer) RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT (CASE WHEN ms < 20 THEN greatest(ms, 0) ELSE 20 + floor(ln(ms::float8 / 20) / ln(1.1::float8))::integer END)::smallint
    $$`);
  await knex.raw(`
    CREATE FUNCTION sync_stats_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${addFrom('added')
        .map((s) => `${s};`)
        .join('\n      ')}
      RETURN NULL;
    END
    $$`);
  await knex.raw('CREATE TRIGGER sync_logs_stats AFTER INSERT ON sync_logs REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION sync_stats_add()');

  // The past, once: every log row (none has conflicts_by_kind yet) and every recorded conflict.
  for (const sql of addFrom('sync_logs')) await knex.raw(sql);
  await knex.raw(
    `INSERT INTO sync_stats_conflicts AS s (minute_start, entity, conflict_type, resolution_strategy, count)
       SELECT resolved_at - resolved_at % ${MINUTE_MS}, entity, conflict_type, resolution_strategy, count(*) FROM sync_conflicts GROUP BY 1, 2, 3, 4
     ON CONFLICT (minute_start, entity, conflict_type, resolution_strategy) DO UPDATE SET count = s.count + EXCLUDED.count`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER IF EXISTS sync_logs_stats ON sync_logs');
  await knex.raw('DROP FUNCTION IF EXISTS sync_stats_add()');
  await knex.raw('DROP FUNCTION IF EXISTS sync_duration_bucket(integer)');
  for (const t of ['sync_stats_conflicts', 'sync_stats_tables', 'sync_stats_durations', 'sync_stats_minutes']) await knex.schema.dropTableIfExists(t);
  await knex.schema.alterTable('sync_logs', (t) => t.dropColumn('conflicts_by_kind'));
}
