import { errAsync, type ResultAsync } from 'neverthrow';
import { FAILURE_ALERT_STREAK, syncError, validationFailed, type QueryParams, type SyncError } from '../domain';
import type { Clock, Principal, SyncStats, SyncStatsQuery } from './ports';

const DAY_MS = 24 * 60 * 60 * 1000;
const MS = /^\d{1,16}$/;
/**
 * The figures are kept per minute (docs/operations.md, "How the figures are kept"): a window is
 * widened to whole minutes, its start rounded down and its end up, and answered as widened.
 */
export const STATS_MINUTE_MS = 60_000;
export const minuteFloor = (ms: number): number => ms - (ms % STATS_MINUTE_MS);
export const minuteCeil = (ms: number): number => minuteFloor(ms + STATS_MINUTE_MS - 1);

/** Answers `GET /api/admin/sync/stats` (spec §4.6): figures for a window, for admins only. */
export class GetSyncStats {
  constructor(
    private readonly query: SyncStatsQuery,
    private readonly clock: Clock,
  ) {}

  execute(input: { principal: Principal; query: QueryParams }): ResultAsync<SyncStats, SyncError> {
    if (!input.principal.isAdmin) return errAsync(syncError('FORBIDDEN', 'Sync statistics are for admins (a token with the admin claim: role "admin" unless the server sets JWT_ADMIN_CLAIM).'));
    const read = (name: string): number | undefined | null => {
      const v = input.query[name];
      if (v === undefined || v === '') return undefined;
      return typeof v === 'string' && MS.test(v) ? Number(v) : null;
    };
    const rawUntil = read('until');
    const rawSince = read('since');
    if (rawUntil === null || rawSince === null) {
      return errAsync(validationFailed('since and until must be times in milliseconds since the epoch.', [{ column: rawSince === null ? 'since' : 'until', reason: 'must be a non-negative integer (ms)' }]));
    }
    const asked = rawUntil ?? this.clock.now();
    const from = rawSince ?? Math.max(0, asked - DAY_MS);
    if (from > asked) return errAsync(validationFailed('since must not be after until.', [{ column: 'since', reason: 'after until' }]));
    const since = minuteFloor(from);
    // An empty window stays empty.
    const until = from === asked ? since : minuteCeil(asked);
    // "More than 3 consecutive failures": the same streak that raises an alert.
    return this.query.stats(since, until, FAILURE_ALERT_STREAK - 1);
  }
}
