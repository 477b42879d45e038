/**
 * The device's SQLite schema, generated from the domain schema (one source of truth), and its
 * migrations, versioned with `PRAGMA user_version` and run on open. A new install creates the
 * current schema at once; an older database runs the steps above its version, and the columns
 * they added are owed a pull of their server values (docs/mobile.md, "Upgrading the local schema").
 */
import { TABLES, columnSpec, tableSpec, type ColumnType, type TableSpec } from '../../src/domain';
import { uuidV4 } from './ids';
import type { SqlDriver, SqlExecutor } from './ports';

const SQL_TYPE: Record<ColumnType, string> = { text: 'TEXT', integer: 'INTEGER', boolean: 'INTEGER', json_array: 'TEXT' };

export const QUARANTINE_TABLE = 'sync_quarantine';
/** What the client keeps about the database itself, in it: `instance_id`, `user_id`. */
export const META_TABLE = 'sync_meta';
/** Columns a schema upgrade added whose server values are still to be pulled, per table. */
export const PENDING_PULLS_TABLE = 'sync_pending_pulls';

export function createTableStatements(table: TableSpec): string[] {
  const columns = Object.entries(table.columns).map(([name, spec]) => `"${name}" ${SQL_TYPE[spec.type]}${spec.nullable ? '' : ' NOT NULL'}`);
  return [
    `CREATE TABLE IF NOT EXISTS "${table.name}" (
      "id" TEXT PRIMARY KEY NOT NULL,
      ${columns.join(',\n      ')},
      "created_at" INTEGER NOT NULL,
      "last_modified_at" INTEGER,
      "_status" TEXT NOT NULL DEFAULT 'active',
      "_changed" TEXT NOT NULL DEFAULT '',
      "_version" INTEGER NOT NULL DEFAULT 0
    )`,
    `CREATE INDEX IF NOT EXISTS "${table.name}__changed" ON "${table.name}" ("_changed")`,
    `CREATE INDEX IF NOT EXISTS "${table.name}_last_modified_at" ON "${table.name}" ("last_modified_at")`,
  ];
}

const QUARANTINE_DDL = `CREATE TABLE IF NOT EXISTS ${QUARANTINE_TABLE} (
  table_name TEXT NOT NULL,
  id TEXT NOT NULL,
  reason TEXT NOT NULL,
  quarantined_at INTEGER NOT NULL,
  PRIMARY KEY (table_name, id)
)`;

const PENDING_PULLS_DDL = `CREATE TABLE IF NOT EXISTS ${PENDING_PULLS_TABLE} (
  table_name TEXT PRIMARY KEY NOT NULL,
  from_version INTEGER NOT NULL,
  columns TEXT NOT NULL
)`;

/** Columns of a synced table. */
export interface TableColumns {
  readonly table: string;
  readonly columns: readonly string[];
}

/** A step from version `toVersion - 1` to `toVersion`. Append only; never edit a released step (docs/schema.md). */
export interface LocalMigration {
  readonly toVersion: number;
  /** Run in order, in the upgrade's one transaction (with every other step). */
  readonly sql: readonly string[];
  /**
   * Columns this step added to synced tables. The rows this device already holds do not have
   * their server values: the first sync after the upgrade pulls those tables with WatermelonDB's
   * `migration` parameter, once (until that pull completes). A new table needs no entry: it has
   * no pull cursor yet, so its first pull is a full one.
   */
  readonly pullColumns?: readonly TableColumns[];
}

/** An app version's local schema: the synced tables as it stores them, and the steps that led there. */
export interface LocalSchema {
  /** `PRAGMA user_version` of a database at this schema: 1 + the number of steps. */
  readonly version: number;
  /** The synced tables and the columns this app version stores: a subset of the domain's. */
  readonly tables: readonly TableSpec[];
  readonly migrations: readonly LocalMigration[];
}

export class LocalSchemaError extends Error {}

/**
 * Checks and builds a local schema. `tables` (default: every table and column of the domain) is
 * what this app version stores; a column it leaves out must be one the server can fill on create
 * (nullable or with a default), as an older app's would be. Steps number 2, 3, … in order, and
 * `pullColumns` names columns of `tables`.
 */
export function defineLocalSchema(options: { readonly tables?: readonly TableSpec[]; readonly migrations?: readonly LocalMigration[] } = {}): LocalSchema {
  // In sync priority order, as the engine walks them.
  const tables = [...(options.tables ?? TABLES)].sort((a, b) => (tableSpec(a.name)?.priority ?? a.priority) - (tableSpec(b.name)?.priority ?? b.priority));
  const migrations = options.migrations ?? [];
  for (const t of tables) {
    const domain = tableSpec(t.name);
    if (!domain) throw new LocalSchemaError(`Local schema: "${t.name}" is not a synced table.`);
    for (const c of Object.keys(t.columns)) if (!columnSpec(domain, c)) throw new LocalSchemaError(`Local schema: ${t.name}.${c} is not a column the server has.`);
    for (const [c, spec] of Object.entries(domain.columns)) {
      if (!Object.hasOwn(t.columns, c) && !spec.nullable && spec.default === undefined) throw new LocalSchemaError(`Local schema: ${t.name}.${c} is required on create and cannot be left out.`);
    }
  }
  migrations.forEach((m, i) => {
    if (m.toVersion !== i + 2) throw new LocalSchemaError(`Local schema: step ${i + 1} must have toVersion ${i + 2}, not ${m.toVersion}.`);
    for (const p of m.pullColumns ?? []) {
      const t = tables.find((x) => x.name === p.table);
      const unknown = p.columns.filter((c) => !t || !Object.hasOwn(t.columns, c));
      if (!t || unknown.length > 0 || p.columns.length === 0) throw new LocalSchemaError(`Local schema: step ${m.toVersion} pulls ${p.table}.${unknown.join(',') || '(no column)'}, not a column the schema stores.`);
    }
  });
  return { version: 1 + migrations.length, tables, migrations };
}

/** This app's steps. */
const MIGRATIONS: readonly LocalMigration[] = [];

/** The schema this build of the package stores. */
export const LOCAL_SCHEMA: LocalSchema = defineLocalSchema({ migrations: MIGRATIONS });
export const LOCAL_SCHEMA_VERSION = LOCAL_SCHEMA.version;

export class LocalSchemaTooNewError extends Error {}

export interface LocalMigrationResult {
  readonly from: number;
  readonly to: number;
  /** The columns still owed their server values (by this upgrade or an earlier one whose pull has not completed yet). */
  readonly pull: PendingPull[];
  /** The database's instance id (docs/mobile.md, "Which checkpoints go with which database"). */
  readonly instanceId: string;
  /** The id was created by this call: on a new database (`from` 0), or on one from before instance ids. */
  readonly instanceCreated: boolean;
  /**
   * A database from before instance ids whose checkpoints the client has not yet taken over (kept
   * in the database until `checkpointsAdopted`, so an app killed in between still takes them over).
   */
  readonly adoptCheckpoints: boolean;
  /** The user the database belongs to (null: none recorded yet). */
  readonly userId: string | null;
}

/**
 * The instance id and owner, in the database itself: a step of its own, idempotent and apart from
 * the versioned steps (it needs no version: `IF NOT EXISTS` and `INSERT OR IGNORE` make a second
 * run a no-op, and a database from before it gets it on its next open).
 */
async function ensureMeta(tx: SqlExecutor, from: number, newInstanceId: () => string): Promise<{ instanceId: string; instanceCreated: boolean; adoptCheckpoints: boolean; userId: string | null }> {
  await tx.execute(`CREATE TABLE IF NOT EXISTS ${META_TABLE} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)`);
  const [found] = await tx.execute(`SELECT value FROM ${META_TABLE} WHERE key = 'instance_id'`);
  let instanceId = typeof found?.['value'] === 'string' ? (found['value'] as string) : null;
  const instanceCreated = instanceId === null;
  if (instanceId === null) {
    instanceId = newInstanceId();
    await tx.execute(`INSERT INTO ${META_TABLE} (key, value) VALUES ('instance_id', ?)`, [instanceId]);
    if (from > 0) await tx.execute(`INSERT OR IGNORE INTO ${META_TABLE} (key, value) VALUES ('adopt_checkpoints', '1')`);
  }
  const [adopt] = await tx.execute(`SELECT value FROM ${META_TABLE} WHERE key = 'adopt_checkpoints'`);
  const [owner] = await tx.execute(`SELECT value FROM ${META_TABLE} WHERE key = 'user_id'`);
  return { instanceId, instanceCreated, adoptCheckpoints: adopt !== undefined, userId: typeof owner?.['value'] === 'string' ? (owner['value'] as string) : null };
}

/** The checkpoints of before instance ids are taken over: a later open no longer does it. */
export async function checkpointsAdopted(db: SqlDriver): Promise<void> {
  await db.execute(`DELETE FROM ${META_TABLE} WHERE key = 'adopt_checkpoints'`);
}

/** Records the user a database belongs to (once: a database never changes hands). */
export async function claimLocalDatabase(db: SqlDriver, userId: string): Promise<void> {
  await db.execute(`INSERT OR IGNORE INTO ${META_TABLE} (key, value) VALUES ('user_id', ?)`, [userId]);
}

/** A column pull an upgrade left owed: the first sync of `table` after it sends `migration`. */
export interface PendingPull extends TableColumns {
  /** The version the database was upgraded from (the `migration`'s `from`). */
  readonly from: number;
}

/**
 * Brings the database to `schema.version` in one transaction, and gives it an instance id if it
 * has none. `newInstanceId` makes that id (random, so two installs never share one).
 */
export async function migrateLocalDatabase(db: SqlDriver, schema: LocalSchema = LOCAL_SCHEMA, newInstanceId: () => string = () => uuidV4()): Promise<LocalMigrationResult> {
  // WAL with synchronous=NORMAL: a write no longer waits for an fsync of the whole journal (about
  // 60x faster local writes measured in the bench). A transaction stays atomic and survives an app
  // crash; only a power loss may forget the last ones, which then sync as if never made.
  await db.execute('PRAGMA journal_mode = WAL');
  await db.execute('PRAGMA synchronous = NORMAL');
  return db.transaction(async (tx) => {
    const [row] = await tx.execute('SELECT user_version AS v FROM pragma_user_version');
    const from = Number(row?.['v'] ?? 0);
    if (from > schema.version) {
      throw new LocalSchemaTooNewError(`The local database has schema version ${from}, newer than this app's ${schema.version}.`);
    }
    // Not a versioned step: a database of any version may lack it (it came with the first upgrade path).
    await tx.execute(PENDING_PULLS_DDL);
    if (from === 0) {
      for (const table of schema.tables) for (const sql of createTableStatements(table)) await tx.execute(sql);
      await tx.execute(QUARANTINE_DDL);
    } else {
      for (const step of schema.migrations.filter((m) => m.toVersion > from)) {
        for (const sql of step.sql) await tx.execute(sql);
        for (const p of step.pullColumns ?? []) await owe(tx, p, from);
      }
    }
    if (from !== schema.version) await tx.execute(`PRAGMA user_version = ${schema.version}`);
    // A step that forgot a column would fail later, at the first write or pull: said here instead.
    for (const t of schema.tables) {
      const have = new Set((await tx.execute(`SELECT name FROM pragma_table_info('${t.name}')`)).map((r) => String(r['name'])));
      const missing = Object.keys(t.columns).filter((c) => !have.has(c));
      if (missing.length) throw new LocalSchemaError(`The local table ${t.name} lacks ${missing.join(', ')} after the upgrade to version ${schema.version}: a step must add it.`);
    }
    const meta = await ensureMeta(tx, from, newInstanceId);
    return { from, to: schema.version, pull: await pendingPulls(tx), ...meta };
  });
}

/** Records columns owed a pull; a table already owed keeps its earliest `from` and gains the columns. */
async function owe(tx: SqlExecutor, p: TableColumns, from: number): Promise<void> {
  const [had] = await tx.execute(`SELECT from_version, columns FROM ${PENDING_PULLS_TABLE} WHERE table_name = ?`, [p.table]);
  const columns = new Set<string>(had ? (JSON.parse(String(had['columns'])) as string[]) : []);
  for (const c of p.columns) columns.add(c);
  const since = had ? Math.min(Number(had['from_version']), from) : from;
  await tx.execute(`INSERT OR REPLACE INTO ${PENDING_PULLS_TABLE} (table_name, from_version, columns) VALUES (?, ?, ?)`, [p.table, since, JSON.stringify([...columns])]);
}

export async function pendingPulls(db: SqlExecutor): Promise<PendingPull[]> {
  const rows = await db.execute(`SELECT table_name, from_version, columns FROM ${PENDING_PULLS_TABLE} ORDER BY table_name`);
  return rows.map((r) => ({ table: String(r['table_name']), from: Number(r['from_version']), columns: JSON.parse(String(r['columns'])) as string[] }));
}
