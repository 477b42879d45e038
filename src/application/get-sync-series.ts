import { errAsync, type ResultAsync } from 'neverthrow';
import { syncError, validationFailed, type ErrorDetail, type QueryParams, type SyncError } from '../domain';
import { minuteCeil, minuteFloor, STATS_MINUTE_MS } from './get-sync-stats';
import type { Clock, Principal, SeriesTypeFigures, SyncSeries, SyncStatsQuery } from './ports';

const MS = /^\d{1,16}$/;
const HOUR_MS = 3_600_000;
export const SERIES_DEFAULT_BUCKET_MS = 60_000;
/** Whole minutes, as the figures are kept (docs/operations.md); over a day, use /stats. */
export const SERIES_MIN_BUCKET_MS = STATS_MINUTE_MS;
export const SERIES_MAX_BUCKET_MS = 24 * HOUR_MS;
/** Enough for a day by the minute; bounds the answer and the work of one request. */
export const SERIES_MAX_BUCKETS = 1_440;

const empty = (): SeriesTypeFigures => ({ count: 0, failures: 0, p50_duration_ms: null, p95_duration_ms: null, records: 0 });

/**
 * Answers `GET /api/admin/sync/series`: syncs of `[from, to)` in buckets of `bucket` ms counted
 * from `from`, every bucket present (an empty one has zero counts), for admins only.
 */
export class GetSyncSeries {
  constructor(
    private readonly query: SyncStatsQuery,
    private readonly clock: Clock,
  ) {}

  execute(input: { principal: Principal; query: QueryParams }): ResultAsync<SyncSeries, SyncError> {
    if (!input.principal.isAdmin) return errAsync(syncError('FORBIDDEN', 'Sync series are for admins (a token with role "admin").'));
    const details: ErrorDetail[] = [];
    const read = (name: string): number | undefined => {
      const v = input.query[name];
      if (v === undefined || v === '') return undefined;
      if (typeof v === 'string' && MS.test(v)) return Number(v);
      details.push({ column: name, reason: 'must be a non-negative integer (ms)' });
      return undefined;
    };
    const rawTo = read('to');
    const rawFrom = read('from');
    const bucket = read('bucket') ?? SERIES_DEFAULT_BUCKET_MS;
    if (details.length) return errAsync(validationFailed('from, to and bucket must be integers in milliseconds.', details));
    const askedTo = rawTo ?? this.clock.now();
    const askedFrom = rawFrom ?? askedTo - HOUR_MS;
    if (askedFrom < 0) return errAsync(validationFailed('The default window starts before the epoch; give from.', [{ column: 'from', reason: 'before the epoch' }]));
    if (askedFrom >= askedTo) return errAsync(validationFailed('from must be before to.', [{ column: 'from', reason: 'not before to' }]));
    if (bucket < SERIES_MIN_BUCKET_MS || bucket > SERIES_MAX_BUCKET_MS) {
      return errAsync(validationFailed(`bucket must be between ${SERIES_MIN_BUCKET_MS} (a minute) and ${SERIES_MAX_BUCKET_MS} ms.`, [{ column: 'bucket', reason: `out of ${SERIES_MIN_BUCKET_MS}..${SERIES_MAX_BUCKET_MS}` }]));
    }
    if (bucket % STATS_MINUTE_MS !== 0) {
      return errAsync(validationFailed(`bucket must be a whole number of minutes (a multiple of ${STATS_MINUTE_MS} ms): the figures are kept per minute.`, [{ column: 'bucket', reason: `not a multiple of ${STATS_MINUTE_MS}` }]));
    }
    // Widened to whole minutes, as the figures are kept.
    const from = minuteFloor(askedFrom);
    const to = minuteCeil(askedTo);
    const count = Math.ceil((to - from) / bucket);
    if (count > SERIES_MAX_BUCKETS) {
      return errAsync(validationFailed(`[from, to) holds ${count} buckets of ${bucket} ms; at most ${SERIES_MAX_BUCKETS}: widen bucket or narrow the window.`, [{ column: 'bucket', reason: `more than ${SERIES_MAX_BUCKETS} buckets` }]));
    }
    return this.query.series(from, to, bucket).map((rows) => {
      const buckets = Array.from({ length: count }, (_, i) => ({ start: from + i * bucket, pull: empty(), push: empty() }));
      for (const { index, type, ...figures } of rows.buckets) {
        const b = buckets[index];
        if (b) b[type] = figures;
      }
      return { from, to, bucket_ms: bucket, buckets, records_by_table: rows.records_by_table, conflicts: rows.conflicts };
    });
  }
}
