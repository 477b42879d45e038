/**
 * The app's data API over the local SQLite database, and the sync engine's view of it.
 *
 * App code creates, updates, deletes and reads rows; this class keeps the sync bookkeeping:
 * `_changed` (the locally changed columns, '' when clean), `_status` ('active' | 'deleted': deletes
 * are soft until pushed, then purged) and `_version` (bumped on every local write, so a row that
 * changed while its push was in flight is not marked clean by mistake).
 */
import { TABLES, columnNames, columnSpec, columnValueProblem, completeNewRow, type ChangeSet, type Conflict, type ErrorDetail, type TableSpec, type WireRecord, type WireValue } from '../../src/domain';
import { PENDING_PULLS_TABLE, QUARANTINE_TABLE, type PendingPull } from './local-schema';
import type { SqlDriver, SqlExecutor, SqlRow, SqlValue, Timers } from './ports';

export class LocalWriteError extends Error {
  constructor(
    message: string,
    readonly details: readonly ErrorDetail[] = [],
  ) {
    super(message);
  }
}

export type PendingKind = 'created' | 'updated' | 'deleted';

export interface PendingRow {
  readonly rowid: number;
  readonly kind: PendingKind;
  readonly version: number;
  /** The record as pushed: every column, `created_at`, and `_changed` for an update. */
  readonly record: WireRecord;
}

export interface QuarantinedRecord {
  readonly table: string;
  readonly id: string;
  readonly reason: string;
  readonly quarantinedAt: number;
}

/**
 * A conflict the app may want to tell its user about: where their edit met someone else's, and
 * which columns each side won. `detectedBy: 'device'` is a pulled change merged into a row with
 * local changes; `'server'` is a conflict the server resolved during a push.
 */
export interface ConflictEvent extends Conflict {
  readonly detectedBy: 'device' | 'server';
}

/**
 * What changed in the local database: rows of `table` (`ids`; null when the whole table may have
 * changed), written by the app on this device (`'local'`: create, update, delete, a quarantined
 * record released or discarded) or by a sync (`'pull'`: a pulled page, a first sync's sweep of
 * rows the server no longer has, the server's stamp on rows a push created). Emitted after the
 * write is committed.
 */
export interface ChangeEvent {
  readonly table: string;
  readonly ids: readonly string[] | null;
  readonly source: 'local' | 'pull';
}

export type ChangeListener = (event: ChangeEvent) => void;

export interface QueryOptions {
  readonly where?: Readonly<Record<string, WireValue>>;
  readonly orderBy?: string;
  readonly descending?: boolean;
  readonly limit?: number;
}

/**
 * Pulled records per chunk. A chunk's ids go to SQLite as one JSON parameter (read back with
 * json_each) for the lookup of local changes, so it is not bounded by SQLite's bound-parameter
 * limit; its rows go through pulledUpsert's prepared statement.
 */
const PULL_CHUNK = 5000;


const q = (name: string) => `"${name}"`;

function toSql(t: TableSpec, column: string, value: WireValue | undefined): SqlValue {
  if (value === undefined || value === null) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return columnSpec(t, column)?.type === 'boolean' ? (value ? 1 : 0) : value;
}

function fromSql(t: TableSpec, row: SqlRow): WireRecord {
  const out: WireRecord = { id: row['id'] as string };
  for (const c of columnNames(t)) {
    const v = row[c];
    out[c] = v === null || v === undefined ? null : t.columns[c]!.type === 'boolean' ? v === 1 || v === true : (v as WireValue);
  }
  out['created_at'] = Number(row['created_at']);
  out['last_modified_at'] = row['last_modified_at'] === null ? null : Number(row['last_modified_at']);
  return out;
}

function checkValues(t: TableSpec, id: string, values: Readonly<Record<string, unknown>>, allowCreatedAt: boolean): void {
  const details: ErrorDetail[] = [];
  for (const [column, value] of Object.entries(values)) {
    if (column === 'created_at' && allowCreatedAt) {
      if (!Number.isSafeInteger(value) || (value as number) < 0) details.push({ table: t.name, id, column, reason: 'must be a non-negative integer (ms)' });
      continue;
    }
    const spec = columnSpec(t, column);
    if (!spec) {
      details.push({ table: t.name, id, column, reason: 'unknown column (sync columns are kept by the client)' });
      continue;
    }
    const problem = columnValueProblem(spec, value);
    if (problem) details.push({ table: t.name, id, column, reason: problem });
  }
  if (details.length) throw new LocalWriteError(`Invalid values for ${t.name} ${id}.`, details);
}

export class LocalDatabase {
  private readonly listeners = new Set<ChangeListener>();
  private readonly byName: ReadonlyMap<string, TableSpec>;

  /** `tables`: the synced tables as the local schema stores them (LocalSchema.tables). */
  constructor(
    private readonly db: SqlDriver,
    private readonly timers: Timers,
    private readonly newId: () => string,
    readonly tables: readonly TableSpec[] = TABLES,
  ) {
    this.byName = new Map(tables.map((t) => [t.name, t]));
  }

  private table(name: string): TableSpec {
    const t = this.byName.get(name);
    if (!t) throw new LocalWriteError(`Unknown table "${name}".`, [{ table: name, reason: 'unknown table' }]);
    return t;
  }

  /**
   * Hears every committed change: local writes (the client debounces a sync on those) and what a
   * sync wrote (the React hooks re-read on both). Returns the unsubscribe function.
   */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private changed(table: string, ids: readonly string[] | null, source: ChangeEvent['source']): void {
    const event: ChangeEvent = { table, ids, source };
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch (e) {
        // The write is committed: a listener's bug must not fail it (nor a sync, which would
        // then replay a page it has applied). Thrown on its own, where the app's global error
        // handler (React Native's ErrorUtils, Node's uncaughtException) sees it.
        globalThis.setTimeout(() => {
          throw e;
        }, 0);
      }
    }
  }

  async create(tableName: string, values: Readonly<Record<string, WireValue>> & { id?: string }): Promise<WireRecord> {
    const t = this.table(tableName);
    const { id = this.newId(), ...rest } = values;
    if (typeof id !== 'string' || id.length === 0 || id.length > 128) throw new LocalWriteError('id must be a string of 1 to 128 characters.', [{ table: t.name, column: 'id', reason: 'invalid' }]);
    checkValues(t, id, rest, true);
    const row = completeNewRow(t, { id, values: rest as WireRecord, changed: null }, this.timers.now());
    if (row.isErr()) throw new LocalWriteError(`Missing required values for ${t.name}.`, row.error);
    const cols = ['id', ...columnNames(t), 'created_at', '_status', '_changed', '_version'];
    const params: SqlValue[] = [id, ...columnNames(t).map((c) => toSql(t, c, row.value[c])), row.value['created_at'] as number, 'active', columnNames(t).join(','), 1];
    try {
      await this.db.execute(`INSERT INTO ${q(t.name)} (${cols.map(q).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, params);
    } catch (e) {
      throw new LocalWriteError(`Could not create ${t.name} ${id}: ${e instanceof Error ? e.message : e}`, [{ table: t.name, id, reason: 'exists or invalid' }]);
    }
    this.changed(t.name, [id], 'local');
    return { ...row.value, id, last_modified_at: null };
  }

  async update(tableName: string, id: string, patch: Readonly<Record<string, WireValue>>): Promise<WireRecord> {
    const t = this.table(tableName);
    checkValues(t, id, patch, false);
    const columns = Object.keys(patch);
    const updated = await this.db.transaction(async (tx) => {
      const [row] = await tx.execute(`SELECT _changed FROM ${q(t.name)} WHERE id = ? AND _status = 'active'`, [id]);
      if (!row) return false;
      const changed = new Set(String(row['_changed']).split(',').filter(Boolean));
      for (const c of columns) changed.add(c);
      const sets = columns.map((c) => `${q(c)} = ?`);
      await tx.execute(`UPDATE ${q(t.name)} SET ${[...sets, '_changed = ?', '_version = _version + 1'].join(', ')} WHERE id = ?`, [
        ...columns.map((c) => toSql(t, c, patch[c])),
        [...changed].join(','),
        id,
      ]);
      return true;
    });
    if (!updated) throw new LocalWriteError(`No ${t.name} with id ${id}.`, [{ table: t.name, id, reason: 'not found' }]);
    this.changed(t.name, [id], 'local');
    return (await this.get(t.name, id))!;
  }

  /** Soft delete: the row disappears from reads at once and is purged once the server has the delete. */
  async delete(tableName: string, id: string): Promise<void> {
    const t = this.table(tableName);
    const deleted = await this.db.transaction(async (tx) => {
      await tx.execute(`UPDATE ${q(t.name)} SET _status = 'deleted', _version = _version + 1 WHERE id = ? AND _status = 'active'`, [id]);
      const [row] = await tx.execute('SELECT changes() AS n');
      return Number(row?.['n'] ?? 0) > 0;
    });
    if (deleted) this.changed(t.name, [id], 'local');
  }

  async get(tableName: string, id: string): Promise<WireRecord | null> {
    const t = this.table(tableName);
    const [row] = await this.db.execute(`SELECT * FROM ${q(t.name)} WHERE id = ? AND _status = 'active'`, [id]);
    return row ? fromSql(t, row) : null;
  }

  async query(tableName: string, options: QueryOptions = {}): Promise<WireRecord[]> {
    const t = this.table(tableName);
    const where = Object.entries(options.where ?? {});
    checkValues(t, '(query)', Object.fromEntries(where.filter(([c]) => c !== 'id')), false);
    const clauses = ["_status = 'active'", ...where.map(([c, v]) => (v === null ? `${q(c)} IS NULL` : `${q(c)} = ?`))];
    const params = where.filter(([, v]) => v !== null).map(([c, v]) => toSql(t, c, v));
    const order = options.orderBy ?? 'created_at';
    if (order !== 'id' && order !== 'created_at' && !columnSpec(t, order)) throw new LocalWriteError(`Cannot order ${t.name} by unknown column ${order}.`);
    const limit = options.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(options.limit))}` : '';
    const rows = await this.db.execute(`SELECT * FROM ${q(t.name)} WHERE ${clauses.join(' AND ')} ORDER BY ${q(order)} ${options.descending ? 'DESC' : 'ASC'}, id${limit}`, params);
    return rows.map((r) => fromSql(t, r));
  }

  // ---- the sync engine's side ----

  /** Pending rows after `afterRowid`, in write order, leaving quarantined records out. */
  async pendingBatch(tableName: string, afterRowid: number, limit: number): Promise<PendingRow[]> {
    const t = this.table(tableName);
    const rows = await this.db.execute(
      `SELECT rowid AS _rowid, * FROM ${q(t.name)} AS t
       WHERE (t._changed <> '' OR t._status = 'deleted') AND rowid > ?
         AND NOT EXISTS (SELECT 1 FROM ${QUARANTINE_TABLE} qr WHERE qr.table_name = ? AND qr.id = t.id)
       ORDER BY rowid LIMIT ?`,
      [afterRowid, t.name, limit],
    );
    return rows.map((r) => {
      const kind: PendingKind = r['_status'] === 'deleted' ? 'deleted' : r['last_modified_at'] === null ? 'created' : 'updated';
      const record = fromSql(t, r);
      delete record['last_modified_at'];
      if (kind === 'updated') record['_changed'] = String(r['_changed']);
      return { rowid: Number(r['_rowid']), kind, version: Number(r['_version']), record };
    });
  }

  async countPending(): Promise<number> {
    let n = 0;
    for (const t of this.tables) {
      const [row] = await this.db.execute(
        `SELECT count(*) AS n FROM ${q(t.name)} AS t WHERE (t._changed <> '' OR t._status = 'deleted')
           AND NOT EXISTS (SELECT 1 FROM ${QUARANTINE_TABLE} qr WHERE qr.table_name = ? AND qr.id = t.id)`,
        [t.name],
      );
      n += Number(row?.['n'] ?? 0);
    }
    return n;
  }

  /**
   * Applies one pulled page in one transaction. A row with local changes keeps its changed
   * columns and stays pending; a locally deleted row stays deleted (the delete wins on the
   * server too); pulled deletes purge the row.
   */
  async applyPulled(changes: ChangeSet): Promise<{ applied: number; merges: ConflictEvent[] }> {
    let applied = 0;
    const merges: ConflictEvent[] = [];
    const touched: Array<{ table: string; ids: string[] }> = [];
    await this.db.transaction(async (tx) => {
      for (const [name, ch] of Object.entries(changes)) {
        // Columns this schema does not store are left out (pulledUpsert names its own); so are tables.
        const t = this.byName.get(name);
        if (!t) continue;
        const ids = [...ch.created.map((r) => r['id'] as string), ...ch.updated.map((r) => r['id'] as string), ...ch.deleted];
        if (ids.length > 0) touched.push({ table: t.name, ids });
        const records = ch.created.length === 0 ? ch.updated : ch.updated.length === 0 ? ch.created : [...ch.created, ...ch.updated];
        for (let i = 0; i < records.length; i += PULL_CHUNK) {
          const chunk = records.length <= PULL_CHUNK ? records : records.slice(i, i + PULL_CHUNK);
          const found = await pendingMerges(tx, t, chunk.map((r) => r['id'] as string), false);
          merges.push(...found);
          // Rows with local changes are the only ones whose _changed the upsert may have to trim.
          applied += await upsertPulled(tx, t, chunk, found.length > 0);
        }
        for (let i = 0; i < ch.deleted.length; i += PULL_CHUNK) {
          const ids = ch.deleted.slice(i, i + PULL_CHUNK);
          merges.push(...(await pendingMerges(tx, t, ids, true)));
          const list = JSON.stringify(ids);
          await tx.execute(`DELETE FROM ${q(t.name)} WHERE id IN (SELECT value FROM json_each(?))`, [list]);
          await tx.execute(`DELETE FROM ${QUARANTINE_TABLE} WHERE table_name = ? AND id IN (SELECT value FROM json_each(?))`, [t.name, list]);
          applied += ids.length;
        }
      }
    });
    for (const { table: name, ids } of touched) this.changed(name, ids, 'pull');
    return { applied, merges };
  }

  /**
   * After the server accepted a batch: deletes are purged and rows marked clean, but only where
   * `_version` is still what was pushed (a row edited meanwhile stays pending).
   */
  async markPushed(tableName: string, rows: readonly PendingRow[], serverTimestamp: number): Promise<void> {
    const t = this.table(tableName);
    // Set-based: a batch is a few statements, not two per row (OP-SQLite prepares every execute).
    const pair = (r: PendingRow) => [r.record['id'] as string, r.version];
    const deleted = JSON.stringify(rows.filter((r) => r.kind === 'deleted').map(pair));
    const kept = rows.filter((r) => r.kind !== 'deleted');
    // Only rows the server did not have change as the app sees them: they get its stamp (last_modified_at).
    const stamped = rows.filter((r) => r.kind === 'created').map((r) => r.record['id'] as string);
    const fromJson = `SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)`;
    await this.db.transaction(async (tx) => {
      if (deleted !== '[]') await tx.execute(`DELETE FROM ${q(t.name)} WHERE (id, _version) IN (${fromJson})`, [deleted]);
      if (kept.length === 0) return;
      // The server has the rows now: later edits go as updates, a later delete as a delete.
      await tx.execute(`UPDATE ${q(t.name)} SET last_modified_at = COALESCE(last_modified_at, ?) WHERE id IN (SELECT value FROM json_each(?))`, [
        serverTimestamp,
        JSON.stringify(kept.map((r) => r.record['id'] as string)),
      ]);
      await tx.execute(`UPDATE ${q(t.name)} SET _changed = '' WHERE (id, _version) IN (${fromJson})`, [JSON.stringify(kept.map(pair))]);
    });
    if (stamped.length > 0) this.changed(t.name, stamped, 'pull');
  }

  async quarantine(tableName: string, entries: ReadonlyArray<{ id: string; reason: string }>): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const e of entries) {
        await tx.execute(`INSERT OR REPLACE INTO ${QUARANTINE_TABLE} (table_name, id, reason, quarantined_at) VALUES (?, ?, ?, ?)`, [tableName, e.id, e.reason, this.timers.now()]);
      }
    });
  }

  async listQuarantined(): Promise<QuarantinedRecord[]> {
    const rows = await this.db.execute(`SELECT * FROM ${QUARANTINE_TABLE} ORDER BY quarantined_at, table_name, id`);
    return rows.map((r) => ({ table: String(r['table_name']), id: String(r['id']), reason: String(r['reason']), quarantinedAt: Number(r['quarantined_at']) }));
  }

  /** Puts a quarantined record back in the push queue (after the app fixed it, say). */
  async releaseQuarantined(tableName: string, id: string): Promise<void> {
    await this.db.execute(`DELETE FROM ${QUARANTINE_TABLE} WHERE table_name = ? AND id = ?`, [tableName, id]);
    // The row is unchanged, but it is pending again: heard as a local write, it gets pushed.
    this.changed(tableName, [id], 'local');
  }

  /**
   * Drops a quarantined record's local changes. A record the server never had is removed; one it
   * has keeps its row until the next full pull of its table brings the server's version back.
   * Returns true when the caller must re-pull the table.
   */
  async discardQuarantined(tableName: string, id: string): Promise<boolean> {
    const t = this.table(tableName);
    const outcome = await this.db.transaction(async (tx): Promise<'none' | 'removed' | 'kept'> => {
      await tx.execute(`DELETE FROM ${QUARANTINE_TABLE} WHERE table_name = ? AND id = ?`, [t.name, id]);
      const [row] = await tx.execute(`SELECT last_modified_at FROM ${q(t.name)} WHERE id = ?`, [id]);
      if (!row) return 'none';
      if (row['last_modified_at'] === null) {
        await tx.execute(`DELETE FROM ${q(t.name)} WHERE id = ?`, [id]);
        return 'removed';
      }
      await tx.execute(`UPDATE ${q(t.name)} SET _changed = '', _status = 'active', _version = _version + 1 WHERE id = ?`, [id]);
      return 'kept';
    });
    // A kept row may show again (a discarded delete): its values are the local ones until the re-pull.
    if (outcome !== 'none') this.changed(t.name, [id], 'local');
    return outcome === 'kept';
  }

  /** Whether the table holds any row the server has stamped (pulled, or pushed and answered). */
  async hasSyncedRows(tableName: string): Promise<boolean> {
    const t = this.table(tableName);
    const [row] = await this.db.execute(`SELECT EXISTS (SELECT 1 FROM ${q(t.name)} WHERE last_modified_at IS NOT NULL) AS found`);
    return Number(row?.['found'] ?? 0) === 1;
  }

  /**
   * After a first sync of a table: drops the rows that came from the server (a
   * `last_modified_at`), have no local change and were not among `seen`, since the server no
   * longer has them. Rows with local changes stay: their push settles them. Returns how many went.
   */
  async dropUnseenSynced(tableName: string, seen: ReadonlySet<string>): Promise<number> {
    const t = this.table(tableName);
    const dropped = await this.db.transaction(async (tx) => {
      const where = `last_modified_at IS NOT NULL AND _changed = '' AND _status = 'active' AND id NOT IN (SELECT value FROM json_each(?))`;
      const ids = JSON.stringify([...seen]);
      const rows = await tx.execute(`SELECT id FROM ${q(t.name)} WHERE ${where}`, [ids]);
      if (rows.length > 0) await tx.execute(`DELETE FROM ${q(t.name)} WHERE ${where}`, [ids]);
      return rows.map((r) => String(r['id']));
    });
    if (dropped.length > 0) this.changed(t.name, dropped, 'pull');
    return dropped.length;
  }

  /** The column pull a schema upgrade left owed for this table, if any. */
  async pendingPull(tableName: string): Promise<PendingPull | null> {
    const [row] = await this.db.execute(`SELECT from_version, columns FROM ${PENDING_PULLS_TABLE} WHERE table_name = ?`, [tableName]);
    return row ? { table: tableName, from: Number(row['from_version']), columns: JSON.parse(String(row['columns'])) as string[] } : null;
  }

  /** The table's owed pull has completed (its cursor is saved). */
  async pullCompleted(tableName: string): Promise<void> {
    await this.db.execute(`DELETE FROM ${PENDING_PULLS_TABLE} WHERE table_name = ?`, [tableName]);
  }

  /** SQLite's own consistency check ('ok' when sound). */
  async integrityCheck(): Promise<string> {
    const rows = await this.db.execute('SELECT * FROM pragma_integrity_check');
    return rows.map((r) => String(Object.values(r)[0])).join('; ');
  }
}

/** The conflicts that pulling these ids into rows with local changes resolves (before they are applied). */
async function pendingMerges(tx: SqlExecutor, t: TableSpec, ids: readonly string[], pulledDelete: boolean): Promise<ConflictEvent[]> {
  if (ids.length === 0) return [];
  const rows = await tx.execute(
    `SELECT id, _changed, _status FROM ${q(t.name)} WHERE id IN (SELECT value FROM json_each(?)) AND (_changed <> '' OR _status = 'deleted')`,
    [JSON.stringify(ids)],
  );
  return rows.map((r) => {
    const changed = String(r['_changed']).split(',').filter(Boolean);
    const base = { table: t.name, id: String(r['id']), detectedBy: 'device' as const };
    if (pulledDelete) return { ...base, type: 'update_delete', resolution: 'delete_wins', clientColumns: [], serverColumns: changed };
    if (r['_status'] === 'deleted') return { ...base, type: 'delete_update', resolution: 'delete_wins', clientColumns: [], serverColumns: [] };
    return {
      ...base,
      type: 'update_update',
      resolution: 'per_column',
      clientColumns: changed.filter((c) => !columnSpec(t, c)?.serverOwned),
      serverColumns: changed.filter((c) => columnSpec(t, c)?.serverOwned),
    };
  });
}

/**
 * A table's upsert of pulled records, built once: multi-row INSERT … VALUES of as many rows as
 * SQLite's classic limit of 999 bound parameters allows, prepared once per page and run for each
 * full set of rows (OP-SQLite prepares every `execute` anew), and one statement for the rest.
 */
interface PulledUpsert {
  readonly columns: readonly string[];
  readonly insertColumns: readonly string[];
  /** Rows per statement. */
  readonly rowsPerStatement: number;
  /** The statement for `rowsPerStatement` rows. */
  readonly full: string;
  /** The statement for `n` rows. */
  readonly rows: (n: number) => string;
  /** UPDATE trimming server-owned columns from _changed, for ids in a JSON array; null without such columns. */
  readonly trimOwned: string | null;
}

/** Per table spec: two local schemas (two app versions in a test) may store the same table differently. */
const upserts = new WeakMap<TableSpec, PulledUpsert>();

function pulledUpsert(t: TableSpec): PulledUpsert {
  let u = upserts.get(t);
  if (u) return u;
  const cols = columnNames(t);
  const insertCols = ['id', ...cols, 'created_at', 'last_modified_at'];
  // The policy table applies on the device too: a server-owned column takes the server's value
  // even when changed locally (and stops counting as a local change).
  const merge = (c: string) =>
    columnSpec(t, c)?.serverOwned
      ? `${q(c)} = excluded.${q(c)}`
      : `${q(c)} = CASE WHEN instr(',' || ${q(t.name)}._changed || ',', ',${c},') > 0 THEN ${q(t.name)}.${q(c)} ELSE excluded.${q(c)} END`;
  const onConflict = `ON CONFLICT(id) DO UPDATE SET ${[...cols.map(merge), 'created_at = excluded.created_at', 'last_modified_at = excluded.last_modified_at'].join(', ')}
     WHERE ${q(t.name)}._status <> 'deleted'`;
  const owned = cols.filter((c) => columnSpec(t, c)?.serverOwned);
  let changed = `',' || _changed || ','`;
  for (const c of owned) changed = `replace(${changed}, ',${c},', ',')`;
  const row = `(${insertCols.map(() => '?').join(', ')})`;
  const rows = (n: number) => `INSERT INTO ${q(t.name)} (${insertCols.map(q).join(', ')}) VALUES ${new Array<string>(n).fill(row).join(', ')}
     ${onConflict}`;
  const rowsPerStatement = Math.max(1, Math.floor(999 / insertCols.length));
  u = {
    columns: cols,
    insertColumns: insertCols,
    rowsPerStatement,
    full: rows(rowsPerStatement),
    rows,
    trimOwned: owned.length ? `UPDATE ${q(t.name)} SET _changed = trim(${changed}, ',') WHERE _changed <> '' AND id IN (SELECT value FROM json_each(?))` : null,
  };
  upserts.set(t, u);
  return u;
}

/**
 * Upserts pulled records; for a row with local changes, each column named in its `_changed` keeps
 * the local value (spec §5), and a locally deleted row is left alone. `withLocalChanges`: some of
 * these ids have local changes (found by pendingMerges), so server-owned columns must be trimmed
 * from their `_changed`; without, there is nothing to trim.
 */
async function upsertPulled(tx: SqlExecutor, t: TableSpec, records: readonly WireRecord[], withLocalChanges: boolean): Promise<number> {
  if (records.length === 0) return 0;
  const u = pulledUpsert(t);
  const width = u.insertColumns.length;
  // One flat parameter list per statement: [id, …columns, created_at, last_modified_at] per row.
  const sets: SqlValue[][] = [];
  for (let start = 0; start < records.length; start += u.rowsPerStatement) {
    const end = Math.min(records.length, start + u.rowsPerStatement);
    const params: SqlValue[] = new Array((end - start) * width);
    let k = 0;
    for (let i = start; i < end; i++) {
      const r = records[i]!;
      params[k++] = r['id'] as string;
      for (const c of u.columns) params[k++] = toSql(t, c, r[c]);
      params[k++] = Number(r['created_at'] ?? 0);
      params[k++] = Number(r['last_modified_at'] ?? 0);
    }
    sets.push(params);
  }
  const last = sets[sets.length - 1]!;
  const rest = last.length === u.rowsPerStatement * width ? null : sets.pop()!;
  await tx.executeMany(u.full, sets);
  if (rest) await tx.execute(u.rows(rest.length / width), rest);
  if (u.trimOwned && withLocalChanges) await tx.execute(u.trimOwned, [JSON.stringify(records.map((r) => r['id'] as string))]);
  return records.length;
}
