import { errAsync, okAsync, type ResultAsync } from 'neverthrow';
import { checkSchemaVersion, classifyRows, CURSOR_EXPIRED_MESSAGE, cursorExpired, nextCursor, parsePullQuery, syncError, type ChangeSet, type QueryParams, type SyncError } from '../domain';
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
  /**
   * Records of this page left out because the server cannot decrypt them (docs/protocol.md):
   * present only when there are some. The rest of the page, and the cursor, are as usual.
   */
  readonly undecryptable?: ReadonlyArray<{ readonly table: string; readonly id: string }>;
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
          .andThen((page) => {
            // Tables pulled from the start (fullTables) send no deletes: only a cursor can be too old.
            if (req.tables.some((t) => !req.fullTables.has(t.name)) && cursorExpired(req.since, page.purgedThrough)) {
              return errAsync(syncError('CURSOR_EXPIRED', CURSOR_EXPIRED_MESSAGE));
            }
            const skipped = page.undecryptable ?? [];
            const left = skipped.length ? new Set(skipped.map((u) => `${u.table}\u0000${u.id}`)) : null;
            // The cursor counts every row read, the undecryptable ones too: the next page resumes after them.
            const sent = left ? page.rows.filter((r) => !left.has(`${r.table}\u0000${r.values['id'] as string}`)) : page.rows;
            return okAsync({
              changes: classifyRows(req.tables, sent, req.since, req.fullTables, input.deviceId),
              timestamp: nextCursor(req.since, page.rows, page.hasMore, page.highWater),
              has_more: page.hasMore,
              ...(skipped.length ? { undecryptable: skipped } : {}),
            });
          }),
      );
  }
}
