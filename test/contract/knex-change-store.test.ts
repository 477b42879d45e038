import { KnexChangeStore } from '../../src/adapters/postgres/knex-change-store';
import { databaseNames, getDatabase } from '../support/databases';
import { runChangeStoreContract, type RecordedConflict } from './change-store.contract';

for (const name of databaseNames()) {
  runChangeStoreContract(`KnexChangeStore [${name}]`, async () => {
    const database = await getDatabase(name);
    await database.reset();
    return {
      store: new KnexChangeStore(database.db),
      conflicts: async (userId): Promise<RecordedConflict[]> => {
        const rows = await database.db('sync_conflicts').where({ user_id: userId }).orderBy('id');
        return rows.map((r: Record<string, unknown>) => ({
          table: r['entity'] as string,
          id: r['record_id'] as string,
          type: r['conflict_type'] as RecordedConflict['type'],
          resolution: r['resolution_strategy'] as RecordedConflict['resolution'],
          clientColumns: r['client_columns'] as string[],
          serverColumns: r['server_columns'] as string[],
          resolvedAt: Number(r['resolved_at']),
        }));
      },
    };
  });
}
