import type { ResultAsync } from 'neverthrow';
import type { SyncError } from '../domain';
import type { ChangeStore, Clock } from './ports';

/**
 * Answers `GET /readyz`: can this process reach its database? The answer is kept for `ttlMs`
 * (and probes arriving meanwhile share one round trip), so probes, however many, cost the
 * database at most one query a second.
 */
export class CheckReadiness {
  private last: { at: number; answer: ResultAsync<void, SyncError> } | undefined;

  constructor(
    private readonly store: ChangeStore,
    private readonly clock: Clock,
    private readonly ttlMs = 1000,
  ) {}

  execute(): ResultAsync<void, SyncError> {
    const now = this.clock.now();
    if (this.last && now - this.last.at < this.ttlMs && now >= this.last.at) return this.last.answer;
    const answer = this.store.ping();
    this.last = { at: now, answer };
    return answer;
  }
}
