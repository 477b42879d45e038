import type { ResultAsync } from 'neverthrow';
import { checkSchemaVersion, classifyRows, nextCursor, parsePullQuery, type ChangeSet, type QueryParams, type SyncError } from '../domain';
import type { ChangeStore } from './ports';
import type { SyncSettings } from './settings';

export interface PullInput {
  readonly userId: string;
  readonly query: QueryParams;
  /** `schema_version` from the query or the `X-Schema-Version` header. */
  readonly schemaVersion: string | undefined;
  readonly deviceId: string | null;
}

export interface PullResponse {
  readonly changes: ChangeSet;
  readonly timestamp: number;
  readonly has_more: boolean;
}

/** Answers `GET /api/sync/pull`: the user's changes since a cursor, one page at a time (spec §4.1). */
export class PullChanges {
  constructor(
    private readonly store: ChangeStore,
    private readonly settings: SyncSettings,
  ) {}

  execute(input: PullInput): ResultAsync<PullResponse, SyncError> {
    return checkSchemaVersion(input.schemaVersion, this.settings.schemaVersions)
      .andThen(() => parsePullQuery(input.query, this.settings.pullLimit))
      .asyncAndThen((req) =>
        this.store
          .pullPage(input.userId, {
            since: req.since,
            tables: req.tables,
            fullTables: req.fullTables,
            limit: req.limit,
            maxBytes: this.settings.pullMaxBytes,
            // A first sync sends everything: the device may have lost what it once pushed.
            excludeDevice: req.since === null ? null : input.deviceId,
          })
          .map((page) => ({
            changes: classifyRows(req.tables, page.rows, req.since, req.fullTables, input.deviceId),
            timestamp: nextCursor(req.since, page.rows, page.hasMore, page.highWater),
            has_more: page.hasMore,
          })),
      );
  }
}
