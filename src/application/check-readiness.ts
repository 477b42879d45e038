import type { ResultAsync } from 'neverthrow';
import type { SyncError } from '../domain';
import type { ChangeStore } from './ports';

/** Answers `GET /readyz`: can this process reach its database? */
export class CheckReadiness {
  constructor(private readonly store: ChangeStore) {}

  execute(): ResultAsync<void, SyncError> {
    return this.store.ping();
  }
}
