import { err, errAsync, okAsync, ResultAsync, type Result } from 'neverthrow';
import {
  canonicalJson,
  checkSchemaVersion,
  completeNewRow,
  CURSOR_EXPIRED_MESSAGE,
  cursorExpired,
  decide,
  storedRecordBytes,
  syncError,
  validatePush,
  validationFailed,
  type Conflict,
  type ConflictType,
  type ErrorDetail,
  type PushedTable,
  type ResolutionStrategy,
  type SyncError,
  type TableSpec,
  type ValidatedPush,
} from '../domain';
import type { ChangeStore, Clock, Digest, PushTransaction, RowWrite, StoredRow } from './ports';
import { PerKeyQueue } from './per-key-queue';
import type { SyncSettings } from './settings';

export interface PushInput {
  readonly userId: string;
  readonly body: unknown;
  readonly schemaVersion: string | undefined;
  readonly deviceId: string | null;
}

export interface PushResponse {
  readonly timestamp: number;
  /** Each resolved conflict, with the columns each side won (so an app can tell its user). */
  readonly conflicts: ReadonlyArray<{
    table: string;
    id: string;
    type: ConflictType;
    resolution: ResolutionStrategy;
    client_columns: readonly string[];
    server_columns: readonly string[];
  }>;
}

interface TablePlan {
  readonly table: TableSpec;
  readonly byDevice: RowWrite[];
  readonly merged: RowWrite[];
}

/**
 * Answers `POST /api/sync/push` (spec §4.2–4.3): validates the whole push, then applies it in one
 * transaction under the user's lock, merging conflicts per the policy table. With a `push_id`,
 * a replay of the same body returns the first answer and writes nothing.
 */
export class PushChanges {
  constructor(
    private readonly store: ChangeStore,
    private readonly clock: Clock,
    private readonly digest: Digest,
    private readonly settings: SyncSettings,
  ) {
    this.perUser = new PerKeyQueue(settings.pushQueuePerUser);
  }

  /** One push per user in flight in this process (see SyncSettings.pushQueuePerUser). */
  private readonly perUser: PerKeyQueue;

  execute(input: PushInput): ResultAsync<PushResponse, SyncError> {
    const limits = { maxRecords: this.settings.maxPushRecords, maxRecordBytes: this.settings.maxRecordBytes };
    return checkSchemaVersion(input.schemaVersion, this.settings.schemaVersions)
      .andThen(() => validatePush(input.body, input.userId, limits))
      .asyncAndThen((push) => {
        const bodyHash = push.pushId === null ? null : this.digest.hash(canonicalJson(input.body));
        // The store may read the receipt with the lock, in one round trip (findReceipt below then
        // needs no query of its own).
        const lookup = push.pushId === null ? undefined : { pushId: push.pushId, notBeforeMs: this.clock.now() - this.settings.pushReceiptTtlMs };
        const transaction = () => this.store.inPushTransaction(input.userId, (tx) => {
          const now = this.clock.now();
          // Merged against rows it never saw (a delete purged since its last pull): refused, so
          // the client syncs from the start first. A replay with a receipt is answered as before.
          const expired = () => errAsync(syncError('CURSOR_EXPIRED', CURSOR_EXPIRED_MESSAGE));
          if (push.pushId === null || bodyHash === null) return cursorExpired(push.lastPulledAt, tx.purgedThrough()) ? expired() : this.apply(tx, push, input.deviceId, now);
          const pushId = push.pushId;
          const notBefore = now - this.settings.pushReceiptTtlMs;
          return tx.findReceipt(pushId, notBefore).andThen((receipt) => {
            if (receipt) {
              return receipt.bodyHash === bodyHash
                ? okAsync(receipt.response as PushResponse)
                : errAsync(syncError('PUSH_ID_REUSED', `push_id ${pushId} was already used for a different body; nothing was written. Use a new push_id for each batch.`));
            }
            if (cursorExpired(push.lastPulledAt, tx.purgedThrough())) return expired();
            return this.apply(tx, push, input.deviceId, now).andThen((response) =>
              tx.saveReceipt(pushId, { bodyHash, response }, now, notBefore).map(() => response),
            );
          });
        }, lookup);
        const queued = this.perUser.run(input.userId, async () => await transaction());
        return ResultAsync.fromSafePromise(queued).andThen(
          (ran): Result<PushResponse, SyncError> =>
            ran ? ran.value : err(syncError('RATE_LIMITED', 'Other pushes of this user are in progress; retry in 1 s.', { retry_after_seconds: 1 })),
        );
      });
  }

  private apply(tx: PushTransaction, push: ValidatedPush, deviceId: string | null, now: number): ResultAsync<PushResponse, SyncError> {
    // One statement at a time: a transaction has one connection.
    let loads: ResultAsync<Array<{ pushed: PushedTable; rows: Map<string, StoredRow> }>, SyncError> = okAsync([]);
    for (const t of push.tables) {
      loads = loads.andThen((done) => tx.loadRows(t.table, [...t.upserts.map((r) => r.id), ...t.deletes]).map((rows) => [...done, { pushed: t, rows }]));
    }
    return loads.andThen((loaded) => {
      const conflicts: Conflict[] = [];
      const invalid: ErrorDetail[] = [];
      const plans = loaded.map(({ pushed, rows }) => planTable(pushed, rows, push.lastPulledAt, deviceId, now, conflicts, invalid));
      if (invalid.length) {
        return errAsync(validationFailed(`The push has ${invalid.length} invalid entr${invalid.length === 1 ? 'y' : 'ies'}; nothing was written.`, invalid));
      }
      // The quota: what the push adds to the user's stored bytes (a new row its size, a rewrite
      // its growth; a tombstone keeps its row's values, so a delete adds nothing), checked under
      // the user's lock before anything is written.
      let growth = 0;
      loaded.forEach(({ rows }, i) => {
        for (const w of [...plans[i]!.byDevice, ...plans[i]!.merged]) {
          const old = rows.get(w.id);
          growth += storedRecordBytes(w.values) - (old ? storedRecordBytes(old.values) : 0);
        }
      });
      const quota = this.settings.userQuotaBytes;
      const used = tx.storedBytes();
      if (quota > 0 && growth > 0 && used + growth > quota) {
        return errAsync(
          syncError('QUOTA_EXCEEDED', `This push needs ${growth} bytes more; ${used} of your ${quota} bytes of storage are used. Nothing was written: delete or shorten records, then push again.`, {
            quota_bytes: quota,
            used_bytes: used,
            needed_bytes: growth,
          }),
        );
      }
      if (growth !== 0) tx.addStoredBytes(growth);
      const wrote = plans.some((p) => p.byDevice.length > 0 || p.merged.length > 0);
      // A merge wrote versions the pushing device has not seen: then the poke is not its echo.
      const echoOf = plans.some((p) => p.merged.length > 0) ? null : deviceId;
      return writeSequentially(tx, plans, deviceId)
        .andThen(() => (conflicts.length ? tx.recordConflicts(conflicts, now) : okAsync(undefined)))
        .andThen(() => tx.cursor())
        // One poke per push, sent by the database at commit (never for a rolled-back push).
        .andThen((timestamp) => (wrote ? tx.announce(timestamp, echoOf).map(() => timestamp) : okAsync(timestamp)))
        .map((timestamp) => ({
          timestamp,
          conflicts: conflicts.map((c) => ({
            table: c.table,
            id: c.id,
            type: c.type,
            resolution: c.resolution,
            client_columns: c.clientColumns,
            server_columns: c.serverColumns,
          })),
        }));
    });
  }
}

/** The reason a change to a record whose stored version cannot be decrypted is refused (docs/protocol.md). */
export const UNDECRYPTABLE_REASON =
  'the server cannot decrypt its stored version of this record (the operators have been told): it cannot take changes to it; delete it, or wait for the operators to restore it';

function planTable(
  pushed: PushedTable,
  rows: Map<string, StoredRow>,
  lastPulledAt: number | null,
  deviceId: string | null,
  now: number,
  conflicts: Conflict[],
  invalid: ErrorDetail[],
): TablePlan {
  const { table } = pushed;
  const plan: TablePlan = { table, byDevice: [], merged: [] };
  const serverRow = (id: string) => {
    const row = rows.get(id);
    return row && { ...row, writtenByPusher: deviceId !== null && row.lastModifiedBy === deviceId };
  };
  const changes = [
    ...pushed.upserts.map((record) => ({ id: record.id, change: { kind: 'upsert' as const, record } })),
    ...pushed.deletes.map((id) => ({ id, change: { kind: 'delete' as const, id } })),
  ];
  for (const { id, change } of changes) {
    const stored = rows.get(id);
    // Its stored version cannot be decrypted (issue 20, item 9): a change to it would be merged
    // with values the server cannot read, so it is refused for this record alone (the client
    // sets it aside); a delete goes through, keeping the stored values as they are.
    if (stored?.undecryptable && !stored.deleted && change.kind === 'upsert') {
      invalid.push({ table: table.name, id, reason: UNDECRYPTABLE_REASON });
      continue;
    }
    const asIs = stored?.undecryptable === true;
    const decision = decide(table, change, serverRow(id), lastPulledAt);
    switch (decision.action) {
      case 'none':
        break;
      case 'create': {
        const row = completeNewRow(table, decision.record, now);
        if (row.isErr()) invalid.push(...row.error);
        else plan.byDevice.push({ id, values: row.value, deleted: false });
        break;
      }
      case 'update':
        if (asIs) invalid.push({ table: table.name, id, reason: UNDECRYPTABLE_REASON });
        else (decision.merged ? plan.merged : plan.byDevice).push({ id, values: decision.values, deleted: false });
        break;
      case 'delete':
        (decision.merged ? plan.merged : plan.byDevice).push({ id, values: rows.get(id)!.values, deleted: true, ...(asIs ? { storedAsIs: true } : {}) });
        break;
      case 'restamp_delete':
        plan.merged.push({ id, values: rows.get(id)!.values, deleted: true, ...(asIs ? { storedAsIs: true } : {}) });
        break;
    }
    if ('conflict' in decision && decision.conflict) conflicts.push(decision.conflict);
  }
  return plan;
}

/** Writes in priority order, one statement at a time. */
function writeSequentially(tx: PushTransaction, plans: readonly TablePlan[], deviceId: string | null): ResultAsync<void, SyncError> {
  let chain: ResultAsync<void, SyncError> = okAsync(undefined);
  for (const plan of plans) {
    if (plan.byDevice.length) chain = chain.andThen(() => tx.writeRows(plan.table, plan.byDevice, deviceId));
    if (plan.merged.length) chain = chain.andThen(() => tx.writeRows(plan.table, plan.merged, null));
  }
  return chain;
}
