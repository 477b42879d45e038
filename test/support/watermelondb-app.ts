import { createRequire } from 'node:module';
import { Database, Model, type AppSchema, type TableName } from '@nozbe/watermelondb';
import type LokiJSAdapterType from '@nozbe/watermelondb/adapters/lokijs';
import type { SchemaMigrations } from '@nozbe/watermelondb/Schema/migrations';
import { hasUnsyncedChanges } from '@nozbe/watermelondb/sync';
import { TABLES, columnNames } from '../../src/domain/schema';
import type { TestServer } from './server';
import { syncWithServer, type SyncWithServerOptions } from './watermelondb-glue';
import { schema } from './watermelondb-schema';

/**
 * A WatermelonDB app as it would be written against this server (docs/watermelondb.md): the
 * schema of watermelondb-schema.ts, plain Model classes (no decorators: this project's TypeScript
 * setup does not enable them), and the real LokiJS adapter in memory. WatermelonDB is CommonJS,
 * so its default exports are read with require.
 */
const require = createRequire(import.meta.url);
const LokiJSAdapter: typeof LokiJSAdapterType = require('@nozbe/watermelondb/adapters/lokijs').default;
/** LokiJS as WatermelonDB resolves it (its own dependency, an alias of @nozbe/lokijs). */
const { LokiMemoryAdapter } = createRequire(require.resolve('@nozbe/watermelondb'))('lokijs') as { LokiMemoryAdapter: new () => unknown };
/** WatermelonDB's console logger (the one `synchronize()` reports recoverable sync errors through). */
export const watermelonLogger: { error: (...m: unknown[]) => void; warn: (...m: unknown[]) => void; log: (...m: unknown[]) => void } =
  require('@nozbe/watermelondb/utils/common/logger').default;

/**
 * Models without decorators. A `createdAt` property is what makes WatermelonDB fill `created_at`
 * on create (the job of `@readonly @date('created_at') createdAt` in a decorated app).
 */
abstract class SyncedModel extends Model {
  get createdAt(): number {
    return this._raw['created_at' as keyof typeof this._raw] as unknown as number;
  }
}
export class Capture extends SyncedModel {
  static override table = 'captures';
}
export class Todo extends SyncedModel {
  static override table = 'todos';
}
export class Thought extends SyncedModel {
  static override table = 'thoughts';
}
export class Idea extends SyncedModel {
  static override table = 'ideas';
}
export class Project extends SyncedModel {
  static override table = 'projects';
}
export const modelClasses = [Capture, Todo, Thought, Idea, Project];

/** The columns the server syncs for `table` (besides `id`), as src/domain/schema.ts lists them. */
export function serverColumns(table: string): string[] {
  const spec = TABLES.find((t) => t.name === table);
  if (!spec) throw new Error(`no table ${table}`);
  return [...columnNames(spec), 'created_at'];
}

type Values = Record<string, string | number | boolean | null>;

export interface WatermelonDeviceOptions {
  readonly schema?: AppSchema;
  readonly migrations?: SchemaMigrations;
  readonly migrationsEnabledAtVersion?: number;
  readonly glue?: Partial<SyncWithServerOptions>;
}

/**
 * A WatermelonDB app on a simulated phone: LokiJS in memory (Node has no IndexedDB), its storage a
 * LokiMemoryAdapter kept across `restart()`, syncing with the stock synchronize() and our glue.
 */
export class WatermelonDevice {
  database!: Database;
  private adapter!: LokiJSAdapterType;
  private readonly persistence = new LokiMemoryAdapter();

  private constructor(
    private readonly server: TestServer,
    private readonly userId: string,
    private options: WatermelonDeviceOptions,
  ) {}

  static async open(server: TestServer, userId: string, options: WatermelonDeviceOptions = {}): Promise<WatermelonDevice> {
    const d = new WatermelonDevice(server, userId, options);
    await d.start();
    return d;
  }

  private async start(): Promise<void> {
    const appSchemaNow = this.options.schema ?? schema;
    this.adapter = new LokiJSAdapter({
      schema: appSchemaNow,
      ...(this.options.migrations ? { migrations: this.options.migrations } : {}),
      useWebWorker: false,
      useIncrementalIndexedDB: false,
      extraLokiOptions: { autosave: false },
      _testLokiAdapter: this.persistence as never,
    });
    this.database = new Database({ adapter: this.adapter, modelClasses: modelClasses.filter((m) => appSchemaNow.tables[m.table] !== undefined) });
    await this.database.get(Object.keys(appSchemaNow.tables)[0]!).query().fetchCount(); // waits for the adapter's set-up (and migrations)
  }

  /** Closes the app (its database saved to the in-memory storage) and opens it again, e.g. after an upgrade. */
  async restart(options: WatermelonDeviceOptions = this.options): Promise<void> {
    const loki = (this.adapter as any)._driver.loki;
    await new Promise<void>((resolve, reject) => loki.saveDatabase((e: unknown) => (e ? reject(e) : resolve())));
    loki.close();
    this.options = options;
    await this.start();
  }

  sync(): Promise<void> {
    return syncWithServer(this.database, {
      baseUrl: this.server.url,
      getToken: () => this.server.token(this.userId),
      pushRetryDelaysMs: [0, 0],
      ...this.options.glue,
      ...(this.options.migrationsEnabledAtVersion !== undefined ? { migrationsEnabledAtVersion: this.options.migrationsEnabledAtVersion } : {}),
    });
  }

  hasUnsyncedChanges(): Promise<boolean> {
    return hasUnsyncedChanges({ database: this.database });
  }

  /** Writes as an app's @field setters do (`_setRaw`), so WatermelonDB tracks `_changed`. */
  async create(table: string, values: Values): Promise<string> {
    let id = '';
    await this.database.write(async () => {
      const record = await this.database.get(table as TableName<Model>).create((r) => {
        if (typeof values['id'] === 'string') r._raw.id = values['id'];
        for (const [k, v] of Object.entries(values)) if (k !== 'id') r._setRaw(k, v);
      });
      id = record.id;
    });
    return id;
  }

  async update(table: string, id: string, values: Values): Promise<void> {
    await this.database.write(async () => {
      const record = await this.database.get(table as TableName<Model>).find(id);
      await record.update((r) => {
        for (const [k, v] of Object.entries(values)) r._setRaw(k, v);
      });
    });
  }

  /** A syncable delete: the record is marked deleted locally and its id pushed. */
  async delete(table: string, id: string): Promise<void> {
    await this.database.write(async () => {
      const record = await this.database.get(table as TableName<Model>).find(id);
      await record.markAsDeleted();
    });
  }

  /** The live rows of `table`, sorted by id, with the server's columns only (no sync bookkeeping). */
  async rows(table: string): Promise<Record<string, unknown>[]> {
    const records = await this.database.get(table as TableName<Model>).query().fetch();
    return records
      .map((r) => pick(r._raw as unknown as Record<string, unknown>, ['id', ...serverColumns(table)]))
      .sort((a, b) => String(a['id']).localeCompare(String(b['id'])));
  }

  /** The raw record, sync bookkeeping included (or null when absent). */
  async raw(table: string, id: string): Promise<Record<string, unknown> | null> {
    try {
      return { ...((await this.database.get(table as TableName<Model>).find(id))._raw as unknown as Record<string, unknown>) };
    } catch {
      return null;
    }
  }
}

export function pick(row: Record<string, unknown>, columns: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(columns.map((c) => [c, row[c] === undefined ? null : row[c]]));
}
