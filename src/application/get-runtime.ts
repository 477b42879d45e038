import { errAsync, okAsync, type ResultAsync } from 'neverthrow';
import { syncError, type SyncError } from '../domain';
import type { Principal, RuntimeFigures, RuntimeProbe } from './ports';

/** Answers `GET /api/admin/runtime` for admins: the figures of the process that answers. */
export class GetRuntime {
  constructor(private readonly probe: RuntimeProbe) {}

  execute(input: { principal: Principal }): ResultAsync<RuntimeFigures, SyncError> {
    if (!input.principal.isAdmin) return errAsync(syncError('FORBIDDEN', 'Runtime figures are for admins (a token with role "admin").'));
    return okAsync({ pool: this.probe.pool() });
  }
}
