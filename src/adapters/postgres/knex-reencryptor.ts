import type { Knex } from 'knex';
import { hasSensitiveColumns, sensitiveColumns, TABLES, type TableSpec } from '../../domain';
import { CIPHERTEXT_PREFIX, type FieldCipher } from '../../application/ports';

/**
 * Brings the sensitive columns of one batch of rows to the current key (plaintext rows are
 * encrypted, older keys re-encrypted), in one transaction, without new stamps (migration 003).
 * Returns the rows rewritten; 0 when the table is done. Safe to stop between batches and run again.
 */
export async function reencryptBatch(db: Knex, cipher: FieldCipher, table: TableSpec, batchSize: number): Promise<number> {
  const columns = sensitiveColumns(table);
  const current = `enc:v1:${cipher.currentKeyId}:`;
  return db.transaction(async (trx) => {
    await trx.raw("SELECT set_config('sync.skip_stamp', 'on', true)");
    const rows: Array<Record<string, string | boolean | null>> = await trx(table.name)
      .select('user_id', 'id', 'encrypted', ...columns)
      .where((q) => {
        q.where('encrypted', false);
        for (const c of columns) q.orWhere((w) => w.whereNotNull(c).andWhereRaw(`left(??, ?) <> ?`, [c, current.length, current]));
      })
      .orderBy(['user_id', 'id'])
      .limit(batchSize)
      .forUpdate();
    for (const row of rows) {
      const update: Record<string, unknown> = { encrypted: true };
      for (const column of columns) {
        const stored = row[column];
        if (typeof stored !== 'string') continue;
        const place = { table: table.name, column, userId: String(row['user_id']), recordId: String(row['id']) };
        // Never launder a value put behind the server's back into a row it marked encrypted.
        if (row['encrypted'] === true && !stored.startsWith(CIPHERTEXT_PREFIX)) {
          throw new Error(`${table.name}.${column} of record ${place.recordId} (user ${place.userId}) is marked encrypted but holds no ciphertext; if it is plaintext another writer put there, set encrypted = false on that row and run again`);
        }
        const plain = cipher.decrypt(stored, place);
        if (plain.isErr()) throw new Error(`${plain.error.message} (${String(plain.error.cause)})`);
        update[column] = cipher.encrypt(plain.value, place);
      }
      await trx(table.name).where({ user_id: row['user_id'], id: row['id'] }).update(update);
    }
    return rows.length;
  });
}

/** Every table with sensitive columns, batch after batch, until nothing is left; reports progress. */
export async function reencryptAll(db: Knex, cipher: FieldCipher, batchSize: number, progress: (table: string, done: number) => void = () => undefined): Promise<number> {
  let total = 0;
  for (const table of TABLES.filter(hasSensitiveColumns)) {
    let done = 0;
    for (let n = await reencryptBatch(db, cipher, table, batchSize); n > 0; n = await reencryptBatch(db, cipher, table, batchSize)) {
      done += n;
      progress(table.name, done);
    }
    total += done;
  }
  return total;
}
