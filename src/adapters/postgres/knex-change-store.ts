import type { Knex } from 'knex';
import { okAsync, ResultAsync } from 'neverthrow';
import { columnNames, cutPage, hasSensitiveColumns, sensitiveColumns, type ColumnType, type PageCandidate, type Conflict, type PulledRow, type SyncError, type TableSpec, type WireRecord } from '../../domain';
import { CIPHERTEXT_PREFIX, type ChangeStore, type FieldCipher, type MarkPayload, type PullPage, type PullQuery, type PushReceipt, type PushTransaction, type ReceiptLookup, type RowWrite, type StoredField, type StoredRow } from '../../application/ports';
import { usesPgDriver } from './connection';
import { databaseError } from './errors';

/** Takes a user's write lock (its sync_users row, held until commit) and returns its last_ts, purge horizon and stored bytes. */
const LOCK_USER = 'INSERT INTO sync_users AS u (user_id, last_ts) VALUES (?, 0) ON CONFLICT (user_id) DO UPDATE SET last_ts = u.last_ts RETURNING u.last_ts, u.purged_through, u.stored_bytes';
/** A push's change of the user's stored bytes, sent with its COMMIT (the user's row is locked). */
const ADD_STORED_BYTES = 'UPDATE sync_users SET stored_bytes = greatest(stored_bytes + ?, 0) WHERE user_id = ?';
/**
 * Sent with the lock, in the same round trip: the push's statements run with their generic plan.
 * A custom plan is made for the user id at hand, and for a user the statistics call small (a new
 * one, or one grown since the last ANALYZE) PostgreSQL probes the ids through the
 * (user_id, last_modified_at) index with a filter on id, a scan of all the user's rows. The generic
 * plan knows no user, so it takes the primary key (user_id, id). Seen in the bench: 100,000 new
 * records of one user took 64-69 s instead of 5 s once captures had been analyzed. No form of the
 * lookup that names the user (as a distributed PostgreSQL needs, to route it) makes PostgreSQL 15
 * prefer the primary key in a custom plan: EXPLAIN shows the other index for `id = ANY(…)`, a join
 * and a LATERAL probe alike. A plain SET LOCAL, not a statement that writes: on Citus it applies
 * on the coordinator only, where the plan is made, and the statement stays routable.
 */
const FORCE_GENERIC_PLANS = 'SET LOCAL plan_cache_mode = force_generic_plan';
/** A push's conflicts, one array per column: any number of them in one statement of fixed text. */
const RECORD_CONFLICTS =
  'INSERT INTO sync_conflicts (user_id, resolved_at, entity, record_id, conflict_type, resolution_strategy, client_columns, server_columns) ' +
  'SELECT ?, ?::int8, u.entity, u.record_id, u.conflict_type, u.resolution_strategy, u.client_columns::jsonb, u.server_columns::jsonb ' +
  'FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[]) AS u(entity, record_id, conflict_type, resolution_strategy, client_columns, server_columns)';
const RECORD_CONFLICTS_STATEMENT: Statement = { sql: RECORD_CONFLICTS, name: 'sync_record_conflicts' };
/**
 * On Citus, a multi-row VALUES list of 8 parameters a row (built per count), which it routes to the
 * user's node like the row writes (an INSERT … SELECT over `unnest` it runs through the coordinator).
 */
const CONFLICT_ROW = '(?, ?::int8, ?, ?, ?, ?, ?::jsonb, ?::jsonb)';
const CONFLICTS_PER_STATEMENT = Math.floor(65_535 / 8);
const recordConflictsSql = (n: number) =>
  'INSERT INTO sync_conflicts (user_id, resolved_at, entity, record_id, conflict_type, resolution_strategy, client_columns, server_columns) VALUES ' +
  new Array<string>(n).fill(CONFLICT_ROW).join(', ');
const SAVE_RECEIPT =
  'INSERT INTO sync_push_receipts (user_id, push_id, body_hash, response, created_at) VALUES (?, ?, ?, ?, ?) ' +
  'ON CONFLICT (user_id, push_id) DO UPDATE SET body_hash = EXCLUDED.body_hash, response = EXCLUDED.response, created_at = EXCLUDED.created_at';
/**
 * The user's expired receipts, deleted with the COMMIT (one round trip) once a push saved its own.
 * Not a CTE of the save: Citus cannot plan a DELETE and an INSERT in one statement with parameters.
 */
const FORGET_RECEIPTS = 'DELETE FROM sync_push_receipts WHERE user_id = ? AND created_at < ? AND push_id <> ?';
/**
 * The live poke of a push (see LiveFeed): delivered by PostgreSQL at commit, never for a rolled-back
 * transaction. The channel is the schema's (liveChannelName), so deployments sharing a database
 * never hear each other.
 */
const NOTIFY_SQL = (payload: string) => `SELECT pg_notify(left('sync_live.' || current_schema(), 63), ${payload})`;
const FIND_RECEIPT_SELECT = 'SELECT body_hash, response, created_at FROM sync_push_receipts';
const FIND_RECEIPT: Statement = { sql: `${FIND_RECEIPT_SELECT} WHERE user_id = ? AND push_id = ? AND created_at >= ?`, name: undefined };
/** Named (prepared once per connection) where the connection is PostgreSQL's; PGlite's runner ignores the name. */
const SAVE_RECEIPT_STATEMENT: Statement = { sql: SAVE_RECEIPT, name: 'sync_save_receipt' };

/** A statement of a push, and a name when it is worth preparing once per connection (on PostgreSQL; the PGlite runner ignores it). */
interface Statement {
  readonly sql: string;
  readonly name: string | undefined;
}
interface StatementResult {
  readonly rows: Record<string, unknown>[];
}
/** Runs a statement in the push's transaction. */
type Run = (statement: Statement, bindings: readonly unknown[]) => Promise<StatementResult>;
/** A receipt lookup made with the lock: what it asked for, and the row it found. */
interface KnownReceipt extends ReceiptLookup {
  readonly row: Record<string, unknown> | null;
}

/** The `pg` connection as the push drives it (knex's pool hands these out). */
interface PgConnection {
  query(text: string): Promise<unknown>;
  query(config: { text: string; values: unknown[]; name?: string }): Promise<StatementResult>;
  escapeLiteral(value: string): string;
  /** knex's mark for a connection its pool must destroy. */
  __knex__disposed?: unknown;
}

/** `?` placeholders as PostgreSQL's `$1`, `$2`, … (the statements here hold no other `?`). */
const positionalCache = new Map<string, string>();
function positional(sql: string): string {
  let text = positionalCache.get(sql);
  if (text === undefined) {
    let n = 0;
    positionalCache.set(sql, (text = sql.replace(/\?/g, () => `$${++n}`)));
  }
  return text;
}

/** Ids per lookup (one array parameter each, so only the size of one statement is bounded). */
const READ_CHUNK = 10_000;

/** The PostgreSQL element type of each domain column type, for the arrays a write sends. */
const PG_ARRAY_TYPE: Record<ColumnType, string> = { text: 'text[]', integer: 'int8[]', boolean: 'bool[]', json_array: 'text[]' };

const quote = (name: string) => `"${name}"`;
/** The SQL type of a domain column type's values. */
const sqlType = (type: ColumnType): string => PG_ARRAY_TYPE[type].slice(0, -2);

/** Never named: see TableStatements' constructor. */
interface LoadStatement {
  readonly sql: string;
  readonly name: undefined;
}

/** PostgreSQL's limit of parameters in one statement (a 16-bit count in the protocol). */
const MAX_PARAMETERS = 65_535;

/**
 * The statements of a table's push, built once. Each names one `user_id`, a single value, so a
 * distributed PostgreSQL (Citus, docs/scaling.md) routes it to the node of the user's shard and a
 * push is a single-node transaction there:
 * - the lookup is `user_id = ? AND id = ANY(?)` (a LATERAL join over `unnest`, which it was,
 *   Citus cannot plan with parameters);
 * - on Citus the write is a multi-row VALUES list, built per row count (`write(n)`): an
 *   `INSERT … SELECT … FROM unnest(…)` is not routed there, Citus runs the SELECT on the
 *   coordinator and copies its rows into the shard, with a two-phase commit. Elsewhere it is
 *   `arrays`.
 */
class TableStatements {
  /** Table columns in the order of a write's values after id, created_at and _status. */
  readonly columns: readonly string[];
  readonly load: LoadStatement;
  /**
   * The write of any number of rows on one PostgreSQL: one array per column and `unnest`, one
   * statement of a fixed text, parsed and planned once per connection (a VALUES list of 1,000 rows
   * costs PostgreSQL about a third more of a push's time, parsed and planned every time).
   */
  readonly arrays: Statement;
  /** Rows per write statement: as many as PostgreSQL's parameter limit allows. */
  readonly rowsPerWrite: number;
  private readonly head: string;
  private readonly tail: string;
  private readonly row: string;
  private readonly writes = new Map<number, Statement>();

  /** `encrypting`: the store has a cipher, so a table with sensitive columns marks its rows `encrypted`. */
  constructor(table: TableSpec, encrypting: boolean) {
    const columns = (this.columns = columnNames(table));
    const encrypted = encrypting && hasSensitiveColumns(table);
    // The writing device goes in every row (written_by; the sync_stamp trigger moves it to
    // last_modified_by and first_written_by, migration 010), so it travels with the row to
    // whichever node stores it. The answer is the stamps given, whose highest is the push's
    // cursor (see KnexPushTransaction.cursor).
    const target = ['user_id', 'written_by', 'id', 'created_at', '_status', ...columns, ...(encrypted ? ['encrypted'] : [])];
    const updated = target.filter((c) => c !== 'user_id' && c !== 'id' && c !== 'written_by');
    this.head = `INSERT INTO ${quote(table.name)} (${target.map(quote).join(', ')}) VALUES `;
    // EXCLUDED is the proposed row after the BEFORE INSERT trigger, which has cleared written_by
    // and stamped the device into last_modified_by.
    const set = `ON CONFLICT (user_id, id) DO UPDATE SET ${updated.map((c) => `${quote(c)} = EXCLUDED.${quote(c)}`).join(', ')}, written_by = EXCLUDED.last_modified_by `;
    // Every stamp, not their max in a CTE around the INSERT: Citus cannot plan that with
    // parameters (generic plans, FORCE_GENERIC_PLANS).
    this.tail = ` ${set}RETURNING last_modified_at`;
    const arrays = ['?::text[]', '?::int8[]', '?::text[]', ...columns.map((c) => `?::${PG_ARRAY_TYPE[table.columns[c]!.type]}`)];
    this.arrays = {
      sql:
        `WITH written AS (INSERT INTO ${quote(table.name)} (${target.map(quote).join(', ')}) ` +
        `SELECT ?, ?, u.*${encrypted ? ', true' : ''} FROM unnest(${arrays.join(', ')}) AS u ${set}` +
        'RETURNING last_modified_at) SELECT max(last_modified_at) AS stamp FROM written',
      // The name says whether the text sets `encrypted`: a store with a cipher and one without share
      // a connection pool (tests, tools), and pg refuses one name prepared with two texts.
      name: `sync_write_${table.name}${encrypted ? '_encrypted' : ''}`,
    };
    const values = ['?', '?', '?::text', '?::int8', '?::text', ...columns.map((c) => `?::${sqlType(table.columns[c]!.type)}`), ...(encrypted ? ['true'] : [])];
    this.row = `(${values.join(', ')})`;
    this.rowsPerWrite = Math.floor(MAX_PARAMETERS / (5 + columns.length));
    // Never a named statement: a plan made while the table is empty or tiny (a new deployment's
    // first push) costs both indexes alike, may take (user_id, last_modified_at), and a named
    // statement keeps it for the connection's life, however large the table grows. Planned anew
    // each time, generic on PostgreSQL (see FORCE_GENERIC_PLANS), it follows the table's size.
    this.load = {
      sql: `SELECT ${selectColumns(table).map(quote).join(', ')} FROM ${quote(table.name)} WHERE user_id = ? AND id = ANY(?::text[])`,
      name: undefined,
    };
  }

  /** The write of `n` rows (n ≤ rowsPerWrite). Texts are kept per row count, not prepared: each is parsed once per use. */
  write(n: number): Statement {
    let statement = this.writes.get(n);
    if (!statement) {
      statement = { sql: this.head + new Array<string>(n).fill(this.row).join(', ') + this.tail, name: undefined };
      if (n <= 64) this.writes.set(n, statement);
    }
    return statement;
  }
}

/** Carries a use case's error out of a knex transaction callback, which can only reject. */
class Rollback extends Error {
  constructor(readonly error: SyncError) {
    super(error.message);
  }
}

function fromDb<T>(promise: Promise<T>): ResultAsync<T, SyncError> {
  return ResultAsync.fromPromise(promise, (e) => (e instanceof Rollback ? e.error : databaseError(e)));
}

/** bigint columns come back as strings from `pg`; ms values fit a double exactly. */
function toNumber(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

/** The columns every table has and a read takes besides the table's own. */
const COMMON_COLUMNS = ['id', 'created_at', 'last_modified_at', 'first_written_at', 'first_written_by', 'last_modified_by', '_status'];
const COMMON_TYPES: Record<string, string> = { id: 'text', created_at: 'int8', last_modified_at: 'int8', first_written_at: 'int8', first_written_by: 'text', last_modified_by: 'text', _status: 'text' };

/**
 * A row's size as a pull page counts it, in SQL: its text as stored (octet_length reads a stored
 * value's length without decompressing or detoasting it; encrypted values count with their
 * base64 overhead, about 4/3), plus a fixed allowance for the other columns and the JSON around
 * them. An estimate of what the row costs to send, good enough to bound a page.
 */
function rowSizeSql(table: TableSpec): string {
  const parts = ['64::int8', 'octet_length(id)'];
  for (const c of columnNames(table)) {
    const type = table.columns[c]!.type;
    parts.push(type === 'text' || type === 'json_array' ? `coalesce(octet_length(${quote(c)}), 0)` : '8');
  }
  return `(${parts.join(' + ')})`;
}

function selectColumns(table: TableSpec): string[] {
  return [...COMMON_COLUMNS, ...(hasSensitiveColumns(table) ? ['encrypted'] : []), ...columnNames(table)];
}

/**
 * A stored row as the protocol sees it: numbers as numbers; sensitive columns still as stored (see
 * decryptRows). `names[k]`, when given, is the key in `row` of the table's k-th own column.
 */
function wireValues(table: TableSpec, row: Record<string, unknown>, names?: readonly string[]): WireRecord {
  const values: WireRecord = { id: row['id'] as string };
  const columns = columnNames(table);
  for (let k = 0; k < columns.length; k++) {
    const column = columns[k]!;
    const v = row[names ? names[k]! : column];
    values[column] = v === null || v === undefined ? null : table.columns[column]!.type === 'integer' ? toNumber(v) : (v as string | boolean);
  }
  values['created_at'] = toNumber(row['created_at']);
  values['last_modified_at'] = toNumber(row['last_modified_at']);
  return values;
}

/** A row to decrypt: its table, values (as wireValues made them) and whether the server marked it encrypted. */
interface SealedRow {
  readonly table: string;
  readonly values: WireRecord;
  readonly encrypted: boolean;
}

/**
 * Decrypts the sensitive columns of wireValues' results in place, all in one decryptAll (which may
 * spread a large pull page over threads). Returns the indexes of the rows that could not be
 * decrypted: a tampered or moved ciphertext, an unknown key, or plaintext in a row the server
 * marked encrypted (a value put there behind its back is not trusted as clear). Those rows keep
 * their values as stored (never garbage, never sent as plaintext); the caller leaves them out.
 */
async function decryptRows(tables: readonly TableSpec[], rows: readonly SealedRow[], userId: string, cipher: FieldCipher): Promise<Set<number>> {
  const failed = new Set<number>();
  const encrypted = new Map(tables.filter(hasSensitiveColumns).map((t) => [t.name, sensitiveColumns(t)]));
  if (encrypted.size === 0) return failed;
  const items: StoredField[] = [];
  const targets: Array<[number, string]> = [];
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const columns = encrypted.get(row.table);
    if (!columns) continue;
    for (const column of columns) {
      const v = row.values[column];
      if (typeof v !== 'string') continue;
      if (row.encrypted && !v.startsWith(CIPHERTEXT_PREFIX)) {
        failed.add(r);
        continue;
      }
      items.push({ stored: v, place: { table: row.table, column, userId, recordId: row.values['id'] as string } });
      targets.push([r, column]);
    }
  }
  if (items.length === 0) return failed;
  const plain = await cipher.decryptAll(items);
  // Rare: find the values at fault one by one, and keep the others.
  const each = plain.isOk() ? plain.value.map((v) => ({ ok: true as const, v })) : items.map((it) => cipher.decrypt(it.stored, it.place).match((v) => ({ ok: true as const, v }), () => ({ ok: false as const, v: '' })));
  for (let i = 0; i < targets.length; i++) if (!each[i]!.ok) failed.add(targets[i]![0]);
  for (let i = 0; i < targets.length; i++) {
    const [r, column] = targets[i]!;
    if (!failed.has(r)) rows[r]!.values[column] = each[i]!.v;
  }
  return failed;
}

/**
 * The ChangeStore on PostgreSQL (or PGlite) through Knex. Stamps come from the `sync_stamp`
 * trigger (migration 001); a push holds the user's `sync_users` row lock from its first statement
 * to its commit, so pushes of one user are serialized and stamps commit in order.
 */
export class KnexChangeStore implements ChangeStore {
  private readonly statements = new Map<string, TableStatements>();
  /**
   * PostgreSQL through `pg`: named (server-side prepared) statements, and pushes on a pool
   * connection driven directly (pgPushTransaction). PGlite runs in this process, through knex.
   */
  private readonly prepared: boolean;

  /** With a cipher, the schema's sensitive columns are encrypted at rest (and read back decrypted). */
  /** `SELECT set_config(lock_timeout), set_config(statement_timeout)` for the push transaction, or null. */
  private readonly timeouts: string | null;
  /** PGlite's first statement of a push: the generic plans of FORCE_GENERIC_PLANS, and the timeouts. */
  private readonly pgliteSettings: string;
  /** Whether the database is Citus, once asked (see isDistributed). */
  private distributed: Promise<boolean> | null = null;

  constructor(
    private readonly db: Knex,
    private readonly cipher: FieldCipher | null = null,
    /** lock_timeout and statement_timeout of a push transaction in ms (0: none): a push never waits without end. */
    timeouts: { readonly lockMs: number; readonly statementMs: number } = { lockMs: 0, statementMs: 0 },
    /** `citusStatements`: write as on Citus whatever the database (the tests run that path on PostgreSQL and PGlite). */
    options: { readonly citusStatements?: boolean } = {},
  ) {
    const set = [
      ...(timeouts.lockMs > 0 ? [`set_config('lock_timeout', '${Math.floor(timeouts.lockMs)}', true)`] : []),
      ...(timeouts.statementMs > 0 ? [`set_config('statement_timeout', '${Math.floor(timeouts.statementMs)}', true)`] : []),
    ];
    this.timeouts = set.length ? `SELECT ${set.join(', ')}` : null;
    this.pgliteSettings = `SELECT ${["set_config('plan_cache_mode', 'force_generic_plan', true)", ...set].join(', ')}`;
    this.prepared = usesPgDriver(db);
    if (options.citusStatements) this.distributed = Promise.resolve(true);
  }

  /** Whether the database is a Citus coordinator (asked once; asked again after a failure). */
  private isDistributed(): Promise<boolean> {
    this.distributed ??= this.db
      .raw("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus")
      .then((r: { rows: Array<{ citus: boolean }> }) => r.rows[0]!.citus === true)
      .catch((e: unknown) => {
        this.distributed = null;
        throw e;
      });
    return this.distributed;
  }

  private statementsFor(table: TableSpec): TableStatements {
    let st = this.statements.get(table.name);
    if (!st) this.statements.set(table.name, (st = new TableStatements(table, this.cipher !== null)));
    return st;
  }

  /**
   * One statement for the whole page: the high-water mark and every table's rows up to it, read
   * in the statement's one snapshot (what a repeatable-read transaction gave, without its BEGIN,
   * COMMIT and a round trip of its own for the mark). See pullStatement for the row layout.
   */
  pullPage(userId: string, query: PullQuery): ResultAsync<PullPage, SyncError> {
    const read = async (): Promise<PullPage> => {
      const { sql, bindings, slots } = this.pullStatement(userId, query);
      const result = (await this.db.raw(sql, bindings as Knex.ValueDict[])) as { rows: Array<Record<string, unknown>> };
      const maxBytes = query.maxBytes ?? Number.MAX_SAFE_INTEGER;
      let highWater = 0;
      let purgedThrough = 0;
      /** Rows the server marked encrypted (see decryptRows). */
      const sealed = new Set<PulledRow>();
      const candidates: PageCandidate<PulledRow>[] = [];
      // Per table read: how many rows it gave, and whether more followed its last one.
      const count = new Array<number>(query.tables.length).fill(0);
      const last = new Array<{ stamp: number; more: boolean } | undefined>(query.tables.length);
      for (const row of result.rows) {
        const t = row['t'] as number;
        if (t < 0) {
          highWater = toNumber(row['last_modified_at']);
          purgedThrough = toNumber(row['created_at']);
          continue;
        }
        const table = query.tables[t]!;
        const lastModifiedAt = toNumber(row['last_modified_at']);
        const pulled: PulledRow = {
          table: table.name,
          values: wireValues(table, row, slots[t]),
          deleted: row['_status'] === 'deleted',
          lastModifiedAt,
          firstWrittenAt: toNumber(row['first_written_at']),
          firstWrittenBy: (row['first_written_by'] as string | null) ?? null,
        };
        if (row['encrypted'] === true) sealed.add(pulled);
        candidates.push({
          row: pulled,
          stamp: lastModifiedAt,
          bytes: toNumber(row['pull_size']),
        });
        count[t]!++;
        last[t] = { stamp: lastModifiedAt, more: row['pull_next'] !== null && row['pull_next'] !== undefined };
      }
      if (query.tables.length > 1) candidates.sort((x, y) => x.stamp - y.stamp);
      // A table read stopped short when it gave limit + 1 rows or the byte cap left rows out: its
      // rows above the last it gave are unknown.
      let openBelow = Infinity;
      for (let t = 0; t < query.tables.length; t++) {
        const l = last[t];
        if (l && (count[t] === query.limit + 1 || l.more)) openBelow = Math.min(openBelow, l.stamp);
      }
      const { rows, hasMore } = cutPage(candidates, openBelow, query.limit, maxBytes);
      // Decrypt only what the page sends: of limit + 1 rows read per table, up to
      // (tables - 1) × limit + 1 are cut off; and of those, a tombstone sends its id alone.
      if (!this.cipher) return { rows, hasMore, highWater, purgedThrough };
      const active = rows.filter((r) => !r.deleted);
      const failed = await decryptRows(query.tables, active.map((r) => ({ table: r.table, values: r.values, encrypted: sealed.has(r) })), userId, this.cipher);
      const undecryptable = [...failed].sort((a, b) => a - b).map((i) => ({ table: active[i]!.table, id: active[i]!.values['id'] as string }));
      return { rows, hasMore, highWater, purgedThrough, ...(undecryptable.length ? { undecryptable } : {}) };
    };
    return fromDb(read());
  }

  /**
   * The mark as a row of its own (`t` = -1, the mark in last_modified_at), then the UNION ALL of
   * each table's next limit + 1 rows above the cursor, `t` being the index of the row's table in
   * the query. Tables have different columns: a row carries the common ones by name and its
   * table's own in slots shared by all tables, one run per SQL type (`text_0`, `text_1`, …,
   * `int8_0`, …), NULL where its table has fewer; `slots[t]` names each column's slot. Measured
   * on a 5-table page of 20 rows: a column per table and column instead cost PostgreSQL 12% more,
   * and the mark joined to the rows (LATERAL) instead of a row of its own 40% more.
   */
  private pullStatement(userId: string, query: PullQuery): { sql: string; bindings: unknown[]; slots: string[][] } {
    const slots = query.tables.map((table) => {
      const used: Record<string, number> = {};
      return columnNames(table).map((c) => {
        const type = sqlType(table.columns[c]!.type);
        return `${type}_${(used[type] = (used[type] ?? -1) + 1)}`;
      });
    });
    const width = new Map<string, string>();
    for (const names of slots) for (const n of names) width.set(n, n.slice(0, n.lastIndexOf('_')));
    const bindings: unknown[] = [userId];
    const branches = query.tables.map((table, i) => {
      const from = query.fullTables.has(table.name) ? 0 : (query.since ?? 0);
      const mine = new Map(slots[i]!.map((slot, k) => [slot, columnNames(table)[k]!]));
      const columns = [...width].map(([slot, type]) => `${mine.has(slot) ? quote(mine.get(slot)!) : `NULL::${type}`} AS ${slot}`);
      bindings.push(userId, from);
      let filter = '';
      if (from === 0) filter = " AND _status = 'active'";
      else if (query.excludeDevice !== null) {
        filter = ' AND last_modified_by IS DISTINCT FROM ?';
        bindings.push(query.excludeDevice);
      }
      bindings.push(query.limit + 1, query.maxBytes ?? Number.MAX_SAFE_INTEGER);
      // The rows up to the one that crosses the byte cap (pull_upto is the running total, this
      // row included): the database, not this process, drops the rest, so a page of large rows
      // never reaches the heap whole. pull_next, the next row's stamp, tells whether the read
      // stopped short. The window streams under the LIMIT (one index scan).
      const size = rowSizeSql(table);
      // Tables with sensitive columns have an `encrypted` mark; the others are never encrypted.
      const encrypted = `${hasSensitiveColumns(table) ? quote('encrypted') : 'false'} AS ${quote('encrypted')}`;
      return (
        `(SELECT * FROM (SELECT ${i} AS t, ${[...COMMON_COLUMNS.map(quote), encrypted, ...columns].join(', ')}, ${size} AS pull_size, ` +
        `(sum(${size}) OVER w)::int8 AS pull_upto, lead(last_modified_at) OVER w AS pull_next FROM ${quote(table.name)} ` +
        `WHERE user_id = ? AND last_modified_at > ? AND last_modified_at <= (SELECT hw FROM h)${filter} ` +
        'WINDOW w AS (ORDER BY last_modified_at ROWS UNBOUNDED PRECEDING) ORDER BY last_modified_at LIMIT ?) AS b ' +
        'WHERE pull_upto - pull_size < ?)'
      );
    });
    // The mark is a row of its own (t = -1, in last_modified_at; the purge horizon in created_at),
    // not a column of every row. A UNION takes its column names from its first SELECT: this one names them all.
    const mark = [
      ...COMMON_COLUMNS.map((c) => `${c === 'last_modified_at' ? 'hw' : c === 'created_at' ? 'purged' : `NULL::${COMMON_TYPES[c]}`} AS ${quote(c)}`),
      `NULL::bool AS ${quote('encrypted')}`,
      ...[...width].map(([slot, type]) => `NULL::${type} AS ${slot}`),
      'NULL::int8 AS pull_size',
      'NULL::int8 AS pull_upto',
      'NULL::int8 AS pull_next',
    ];
    const sql =
      `WITH h AS MATERIALIZED (SELECT ${this.highWaterSql()} AS hw, coalesce((SELECT purged_through FROM sync_users WHERE user_id = u.user_id), 0) AS purged FROM (SELECT ?::text AS user_id) AS u) ` +
      `SELECT -1 AS t, ${mark.join(', ')} FROM h UNION ALL ${branches.join(' UNION ALL ')}`;
    return { sql, bindings, slots };
  }

  /**
   * The newest stamp committed in the pull's snapshot, an SQL expression of `u.user_id`. Writers
   * hold the user's sync_users row lock from taking a stamp to committing, so any write still in
   * flight will commit above this value.
   */
  protected highWaterSql(): string {
    return 'coalesce((SELECT last_ts FROM sync_users WHERE user_id = u.user_id), 0)';
  }

  inPushTransaction<T>(userId: string, work: (tx: PushTransaction) => ResultAsync<T, SyncError>, receipt?: ReceiptLookup): ResultAsync<T, SyncError> {
    if (this.prepared) return fromDb(this.pgPushTransaction(userId, work, receipt));
    return fromDb(this.isDistributed().then((distributed) => this.pgliteTransaction(userId, work, distributed)));
  }

  private pgliteTransaction<T>(userId: string, work: (tx: PushTransaction) => ResultAsync<T, SyncError>, distributed: boolean): Promise<T> {
    return this.db.transaction(async (trx) => {
      // PGlite plans the lookup as PostgreSQL does: a custom plan that knows 1,000 ids reads all
      // of a large user's rows through (user_id, last_modified_at) when it has no statistics.
      await trx.raw(this.pgliteSettings);
      // Take the user's write lock first: concurrent pushes of one user queue here.
      const locked = (await trx.raw(LOCK_USER, [userId])) as { rows: Array<{ last_ts: unknown; purged_through: unknown; stored_bytes: unknown }> };
      const lastTs = toNumber(locked.rows[0]!.last_ts);
      const purged = toNumber(locked.rows[0]!.purged_through);
      const run: Run = (statement, bindings) => trx.raw(statement.sql, bindings as Knex.ValueDict[]) as unknown as Promise<{ rows: Record<string, unknown>[] }>;
      const tx = new KnexPushTransaction(run, userId, this.cipher, (t) => this.statementsFor(t), lastTs, purged, null, toNumber(locked.rows[0]!.stored_bytes), distributed);
      const result = await work(tx);
      if (result.isErr()) throw new Rollback(result.error);
      if (tx.storedBytesDelta !== 0) await trx.raw(ADD_STORED_BYTES, [tx.storedBytesDelta, userId]);
      if (tx.forget) await trx.raw(FORGET_RECEIPTS, [userId, tx.forget.beforeMs, tx.forget.keep]);
      if (tx.announcement) await trx.raw(NOTIFY_SQL('?'), [tx.announcement]);
      return result.value;
    });
  }

  /**
   * The push transaction on PostgreSQL, on a connection of the pool driven directly. The first
   * round trip is one simple query: BEGIN, the lock and (given `receipt`) the receipt lookup,
   * with the values as quoted literals. In a transaction at READ COMMITTED each statement takes
   * its own snapshot, so the lookup, which starts once the lock is held, sees a receipt that a
   * push of the same id committed while this one waited. The statements after it skip knex's
   * per-query work. A push with a push_id made 7 round trips and now makes 5; on loopback each cost
   * the server 70-100 us of CPU, most of it in the socket write.
   */
  private async pgPushTransaction<T>(userId: string, work: (tx: PushTransaction) => ResultAsync<T, SyncError>, receipt: ReceiptLookup | undefined): Promise<T> {
    const client = this.db.client as unknown as { acquireConnection(): Promise<PgConnection>; releaseConnection(c: PgConnection): Promise<unknown> };
    const distributed = await this.isDistributed();
    const conn = await client.acquireConnection();
    try {
      const user = conn.escapeLiteral(userId);
      const ask = receipt && Number.isSafeInteger(receipt.notBeforeMs) ? receipt : null;
      // The timeouts are transaction-local (SET LOCAL), set in the same round trip, before the lock.
      const first = [`BEGIN`, ...(this.timeouts ? [this.timeouts] : []), FORCE_GENERIC_PLANS, LOCK_USER.replace('?', () => user)];
      if (ask) first.push(`${FIND_RECEIPT_SELECT} WHERE user_id = ${user} AND push_id = ${conn.escapeLiteral(ask.pushId)} AND created_at >= ${ask.notBeforeMs}`);
      const answers = (await conn.query(first.join('; '))) as unknown as StatementResult[];
      const [locked, found] = answers.slice(this.timeouts ? 3 : 2) as [StatementResult, StatementResult?];
      const lastTs = toNumber(locked.rows[0]!['last_ts']);
      const purged = toNumber(locked.rows[0]!['purged_through']);
      const run: Run = (statement, bindings) => conn.query({ text: positional(statement.sql), values: bindings as unknown[], ...(statement.name ? { name: statement.name } : {}) });
      const known = ask && found ? { ...ask, row: found.rows[0] ?? null } : null;
      const tx = new KnexPushTransaction(run, userId, this.cipher, (t) => this.statementsFor(t), lastTs, purged, known, toNumber(locked.rows[0]!['stored_bytes']), distributed);
      const result = await work(tx);
      if (result.isErr()) throw new Rollback(result.error);
      // The stored bytes and the poke go with the COMMIT, in the same round trip (one simple query).
      const delta = tx.storedBytesDelta;
      const last = [
        ...(delta !== 0 && Number.isSafeInteger(delta) ? [ADD_STORED_BYTES.replace('?', String(delta)).replace('?', () => user)] : []),
        ...(tx.forget ? [`DELETE FROM sync_push_receipts WHERE user_id = ${user} AND created_at < ${Math.floor(tx.forget.beforeMs)} AND push_id <> ${conn.escapeLiteral(tx.forget.keep)}`] : []),
        ...(tx.announcement ? [NOTIFY_SQL(conn.escapeLiteral(tx.announcement))] : []),
        'COMMIT',
      ];
      await conn.query(last.join('; '));
      return result.value;
    } catch (e) {
      // Whatever failed (a COMMIT too: then there is no transaction left, and ROLLBACK only warns).
      // A connection that cannot even roll back is marked for knex's pool to destroy, not reuse.
      await conn.query('ROLLBACK').catch((failure: unknown) => (conn.__knex__disposed ??= failure));
      throw e;
    } finally {
      await client.releaseConnection(conn);
    }
  }

  ping(): ResultAsync<void, SyncError> {
    return fromDb(this.db.raw('select 1').then(() => undefined));
  }
}

class KnexPushTransaction implements PushTransaction {
  /** The NOTIFY payload the store sends before COMMIT, if the push announced its mark. */
  announcement: string | null = null;

  constructor(
    private readonly run: Run,
    private readonly userId: string,
    private readonly cipher: FieldCipher | null,
    private readonly statements: (table: TableSpec) => TableStatements,
    /** The user's newest stamp: sync_users.last_ts as the lock found it, then each write's highest. */
    private lastTs: number,
    private readonly purged: number,
    private readonly known: KnownReceipt | null,
    /** sync_users.stored_bytes as the lock found it. */
    private readonly storedAtLock: number,
    /** The database is Citus: writes are VALUES lists, which it routes (see TableStatements). */
    private readonly distributed = false,
  ) {}

  purgedThrough(): number {
    return this.purged;
  }

  /** What this transaction adds to the user's stored bytes (written with its commit). */
  storedBytesDelta = 0;
  /** The user's receipts to forget with the commit: older than beforeMs, but for the one saved (keep). */
  forget: { readonly beforeMs: number; readonly keep: string } | null = null;

  storedBytes(): number {
    return this.storedAtLock + this.storedBytesDelta;
  }

  addStoredBytes(delta: number): void {
    this.storedBytesDelta += delta;
  }

  findReceipt(pushId: string, notBeforeMs: number): ResultAsync<PushReceipt | null, SyncError> {
    // Read with the lock (no other push of this user can have saved one since), for this id and
    // a bound no later than this one: rows at or after this bound are among what it found.
    const read =
      this.known && this.known.pushId === pushId && this.known.notBeforeMs <= notBeforeMs
        ? Promise.resolve(this.known.row && toNumber(this.known.row['created_at']) >= notBeforeMs ? this.known.row : undefined)
        : this.run(FIND_RECEIPT, [this.userId, pushId, notBeforeMs]).then(({ rows: [row] }) => row);
    return fromDb(read.then((row) => (row ? { bodyHash: row['body_hash'] as string, response: parseJson(row['response']) } : null)));
  }

  loadRows(table: TableSpec, ids: readonly string[]): ResultAsync<Map<string, StoredRow>, SyncError> {
    if (ids.length === 0) return fromDb(Promise.resolve(new Map()));
    const load = async () => {
      const rows = new Map<string, StoredRow>();
      const statement = this.statements(table).load;
      for (let i = 0; i < ids.length; i += READ_CHUNK) {
        const found = await this.run(statement, [this.userId, ids.length <= READ_CHUNK ? ids : ids.slice(i, i + READ_CHUNK)]);
        const loaded = found.rows.map((row) => ({ table: table.name, values: wireValues(table, row), encrypted: row['encrypted'] === true }));
        const failed = this.cipher ? await decryptRows([table], loaded, this.userId, this.cipher) : new Set<number>();
        for (let k = 0; k < found.rows.length; k++) {
          const row = found.rows[k]!;
          const values = loaded[k]!.values;
          delete values['last_modified_at'];
          rows.set(row['id'] as string, {
            values,
            deleted: row['_status'] === 'deleted',
            lastModifiedAt: toNumber(row['last_modified_at']),
            lastModifiedBy: (row['last_modified_by'] as string | null) ?? null,
            ...(failed.has(k) ? { undecryptable: true } : {}),
          });
        }
      }
      return rows;
    };
    return fromDb(load());
  }

  writeRows(table: TableSpec, rows: readonly RowWrite[], byDevice: string | null): ResultAsync<void, SyncError> {
    if (rows.length === 0) return fromDb(Promise.resolve());
    const statements = this.statements(table);
    const device = byDevice ?? '';
    if (!this.distributed) return fromDb(this.writeArrays(table, statements, rows, device));
    const write = async () => {
      for (let from = 0; from < rows.length; from += statements.rowsPerWrite) {
        const n = Math.min(statements.rowsPerWrite, rows.length - from);
        // Per row, in the statement's order: user_id, written_by, id, created_at, _status, the table's columns.
        const bindings: unknown[] = [];
        for (let i = from; i < from + n; i++) {
          const r = rows[i]!;
          bindings.push(this.userId, device, r.id, r.values['created_at'] ?? null, r.deleted ? 'deleted' : 'active');
          for (const c of statements.columns) {
            const v = r.values[c] ?? null;
            const sensitive = this.cipher !== null && table.columns[c]!.sensitive === true;
            bindings.push(sensitive && typeof v === 'string' && !r.storedAsIs ? this.cipher!.encrypt(v, { table: table.name, column: c, userId: this.userId, recordId: r.id }) : v);
          }
        }
        const written = await this.run(statements.write(n), bindings);
        for (const row of written.rows) this.lastTs = Math.max(this.lastTs, toNumber(row['last_modified_at']));
      }
    };
    return fromDb(write());
  }

  /** The rows as one array per column, in the statement's order: id, created_at, _status, the table's columns. */
  private async writeArrays(table: TableSpec, statements: TableStatements, rows: readonly RowWrite[], device: string): Promise<void> {
    const n = rows.length;
    const ids = new Array<string>(n);
    const createdAt = new Array<unknown>(n);
    const status = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      ids[i] = r.id;
      createdAt[i] = r.values['created_at'] ?? null;
      status[i] = r.deleted ? 'deleted' : 'active';
    }
    const arrays: unknown[][] = [ids, createdAt, status];
    for (const c of statements.columns) {
      const values = new Array<unknown>(n);
      const sensitive = this.cipher !== null && table.columns[c]!.sensitive === true;
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        const v = r.values[c] ?? null;
        values[i] = sensitive && typeof v === 'string' && !r.storedAsIs ? this.cipher!.encrypt(v, { table: table.name, column: c, userId: this.userId, recordId: r.id }) : v;
      }
      arrays.push(values);
    }
    const written = await this.run(statements.arrays, [this.userId, device, ...arrays]);
    const stamp = written.rows[0]?.['stamp'];
    if (stamp !== null && stamp !== undefined) this.lastTs = Math.max(this.lastTs, toNumber(stamp));
  }

  recordConflicts(conflicts: readonly Conflict[], resolvedAtMs: number): ResultAsync<void, SyncError> {
    if (!this.distributed) {
      // One array per column: one statement of a fixed text for any number of conflicts.
      const columns = [
        conflicts.map((c) => c.table),
        conflicts.map((c) => c.id),
        conflicts.map((c) => c.type),
        conflicts.map((c) => c.resolution),
        conflicts.map((c) => JSON.stringify(c.clientColumns)),
        conflicts.map((c) => JSON.stringify(c.serverColumns)),
      ];
      return fromDb(this.run(RECORD_CONFLICTS_STATEMENT, [this.userId, resolvedAtMs, ...columns]).then(() => undefined));
    }
    const record = async () => {
      for (let from = 0; from < conflicts.length; from += CONFLICTS_PER_STATEMENT) {
        const part = conflicts.slice(from, from + CONFLICTS_PER_STATEMENT);
        const bindings: unknown[] = [];
        for (const c of part) bindings.push(this.userId, resolvedAtMs, c.table, c.id, c.type, c.resolution, JSON.stringify(c.clientColumns), JSON.stringify(c.serverColumns));
        await this.run({ sql: recordConflictsSql(part.length), name: undefined }, bindings);
      }
    };
    return fromDb(record());
  }

  saveReceipt(pushId: string, receipt: PushReceipt, nowMs: number, forgetBeforeMs: number): ResultAsync<void, SyncError> {
    // The user's expired receipts go with the commit (see FORGET_RECEIPTS); the same push_id is
    // left to the INSERT's ON CONFLICT.
    this.forget = { beforeMs: forgetBeforeMs, keep: pushId };
    return fromDb(this.run(SAVE_RECEIPT_STATEMENT, [this.userId, pushId, receipt.bodyHash, JSON.stringify(receipt.response), nowMs]).then(() => undefined));
  }

  /**
   * sync_users.last_ts as it stands now, without a query: the lock holds off every other writer
   * of this user, and the stamp trigger writes back the highest stamp it gave at the end of each
   * write, which that write returned.
   */
  cursor(): ResultAsync<number, SyncError> {
    return okAsync(Math.max(1, this.lastTs));
  }

  announce(mark: number, deviceId: string | null): ResultAsync<void, SyncError> {
    const payload: MarkPayload = { u: this.userId, m: mark, d: deviceId };
    this.announcement = JSON.stringify(payload);
    return okAsync(undefined);
  }
}

function parseJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}
