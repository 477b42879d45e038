import { expect } from 'chai';
import { TABLES, hasSensitiveColumns, type ColumnType } from '../../src/domain';
import { describeEachDatabase } from '../support/databases';

/** The migrations are history and the domain schema is the truth: this keeps the two from drifting. */
const PG_TYPE: Record<ColumnType, string> = { text: 'text', integer: 'bigint', boolean: 'boolean', json_array: 'text' };

const COMMON = {
  user_id: { type: 'text', nullable: false },
  id: { type: 'text', nullable: false },
  created_at: { type: 'bigint', nullable: false },
  last_modified_at: { type: 'bigint', nullable: false },
  first_written_at: { type: 'bigint', nullable: false },
  last_modified_by: { type: 'text', nullable: true },
  first_written_by: { type: 'text', nullable: true },
  written_by: { type: 'text', nullable: true },
  _status: { type: 'text', nullable: false },
};

describeEachDatabase('migrated schema matches the domain schema', (ctx) => {
  for (const table of TABLES) {
    it(`${table.name}: columns, types, nullability, defaults, keys, index and stamp trigger`, async () => {
      const db = ctx.database.db;
      const cols = await db('information_schema.columns')
        .select('column_name', 'data_type', 'is_nullable', 'column_default')
        .where({ table_name: table.name })
        .whereRaw('table_schema = current_schema()');
      const actual = Object.fromEntries(cols.map((c: any) => [c.column_name, { type: c.data_type, nullable: c.is_nullable === 'YES' }]));
      const expected: Record<string, { type: string; nullable: boolean }> = { ...COMMON };
      for (const [name, spec] of Object.entries(table.columns)) expected[name] = { type: PG_TYPE[spec.type], nullable: spec.nullable };
      if (hasSensitiveColumns(table)) expected['encrypted'] = { type: 'boolean', nullable: false };
      expect(actual).to.deep.equal(expected);

      // A column default in the domain is the database's default too (for writers other than the sync API).
      for (const [name, spec] of Object.entries(table.columns)) {
        if (spec.default === undefined || spec.default === null) continue;
        const dbDefault = cols.find((c: any) => c.column_name === name)?.column_default as string | null;
        expect(dbDefault, `${table.name}.${name} default`).to.be.a('string');
        expect(String(dbDefault).replace(/::text$/, '').replace(/^'(.*)'$/, '$1'), `${table.name}.${name} default`).to.equal(String(spec.default));
      }

      const pk = await db.raw(
        `SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey, a.attnum)) AS cols FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = ?::regclass AND i.indisprimary`,
        [table.name],
      );
      expect(pk.rows[0].cols).to.deep.equal(['user_id', 'id']);

      const indexes = await db.raw(`SELECT indexdef FROM pg_indexes WHERE tablename = ? AND schemaname = current_schema()`, [table.name]);
      expect(indexes.rows.map((r: any) => r.indexdef).some((d: string) => /\(user_id, last_modified_at\)/.test(d))).to.equal(true);

      // The row trigger stamps; the statement trigger writes the statement's last stamp back to sync_users (migration 005).
      const triggers = await db.raw(`SELECT tgname FROM pg_trigger WHERE tgrelid = ?::regclass AND NOT tgisinternal ORDER BY tgname`, [table.name]);
      expect(triggers.rows.map((r: any) => r.tgname)).to.deep.equal([`${table.name}_sync_stamp`, `${table.name}_sync_stamp_flush`]);
    });
  }

  it('stamps every write of a user with a unique, strictly increasing last_modified_at, whoever writes', async () => {
    const db = ctx.database.db;
    await db('ideas').insert([1, 2, 3].map((i) => ({ user_id: 'u', id: `i${i}`, text: 't', created_at: 0 })));
    await db('projects').insert({ user_id: 'u', id: 'p', name: 'n', created_at: 0 });
    await db('ideas').where({ user_id: 'u', id: 'i1' }).update({ text: 'again' });
    const stamps = [
      ...(await db('ideas').where({ user_id: 'u' }).select('last_modified_at')),
      ...(await db('projects').where({ user_id: 'u' }).select('last_modified_at')),
    ].map((r: any) => Number(r.last_modified_at));
    expect(new Set(stamps).size).to.equal(stamps.length);
    const user = await db('sync_users').where({ user_id: 'u' }).first();
    expect(Number(user.last_ts)).to.equal(Math.max(...stamps));
    const i1 = await db('ideas').where({ user_id: 'u', id: 'i1' }).first();
    expect(Number(i1.first_written_at)).to.be.below(Number(i1.last_modified_at));
  });

  it('stamps multi-row statements, upserts and statements mixing users like single-row writes', async () => {
    const db = ctx.database.db;
    const before = Date.now();
    // One statement, rows of three users interleaved: each user's stamps are unique and increasing.
    await db('ideas').insert(Array.from({ length: 30 }, (_, i) => ({ user_id: `m${i % 3}`, id: `i${i}`, text: 't', created_at: 0 })));
    // INSERT … ON CONFLICT DO UPDATE of existing rows (i0 … i27) and new ones (i30 …), one user.
    await db('ideas')
      .insert(Array.from({ length: 20 }, (_, i) => ({ user_id: 'm0', id: `i${i * 3}`, text: 'again', created_at: 0 })))
      .onConflict(['user_id', 'id'])
      .merge(['text']);
    await db('todos').where({ user_id: 'm1' }).update({ state: 'done' }); // no rows: nothing stamped
    for (const user of ['m0', 'm1', 'm2']) {
      const rows = await db('ideas').where({ user_id: user }).orderBy('id').select('id', 'text', 'last_modified_at', 'first_written_at');
      const stamps = rows.map((r: any) => Number(r.last_modified_at));
      expect(new Set(stamps).size, user).to.equal(stamps.length);
      for (const s of stamps) expect(s).to.be.at.least(before);
      const last = await db('sync_users').where({ user_id: user }).first();
      expect(Number(last.last_ts), user).to.equal(Math.max(...stamps));
      for (const r of rows as any[]) {
        const updated = r.text === 'again' && Number(r.id.slice(1)) < 30;
        if (updated) expect(Number(r.first_written_at)).to.be.below(Number(r.last_modified_at));
        else expect(Number(r.first_written_at)).to.equal(Number(r.last_modified_at));
      }
    }
    // The next single-row write of a user is stamped above everything before it.
    const top = Number((await db('sync_users').where({ user_id: 'm0' }).first()).last_ts);
    await db('projects').insert({ user_id: 'm0', id: 'p', name: 'n', created_at: 0 });
    const p = await db('projects').where({ user_id: 'm0', id: 'p' }).first();
    expect(Number(p.last_modified_at)).to.be.above(top);
    expect(Number((await db('sync_users').where({ user_id: 'm0' }).first()).last_ts)).to.equal(Number(p.last_modified_at));
  });

  it('takes the writing device from written_by (never stored); a write without it is no device\'s, as with the session setting', async () => {
    const db = ctx.database.db;
    const row = () => db('ideas').where({ user_id: 'w', id: 'i1' }).first('last_modified_by', 'first_written_by', 'written_by');
    await db('ideas').insert({ user_id: 'w', id: 'i1', text: 't', created_at: 0, written_by: 'phone' });
    expect(await row()).to.deep.equal({ last_modified_by: 'phone', first_written_by: 'phone', written_by: null });
    // The push's upsert: EXCLUDED is the proposed row after the BEFORE INSERT trigger (written_by
    // already cleared), so it passes the device on from EXCLUDED.last_modified_by.
    await db.raw(
      "INSERT INTO ideas (user_id, id, text, created_at, written_by) VALUES ('w', 'i1', 'u', 0, 'tablet') ON CONFLICT (user_id, id) DO UPDATE SET text = EXCLUDED.text, written_by = EXCLUDED.last_modified_by",
    );
    expect(await row()).to.deep.equal({ last_modified_by: 'tablet', first_written_by: 'phone', written_by: null });
    // An UPDATE that does not set it (an admin's, re-encryption's) is no device's: every device pulls it.
    await db('ideas').where({ user_id: 'w', id: 'i1' }).update({ text: 'admin' });
    expect(await row()).to.deep.equal({ last_modified_by: null, first_written_by: 'phone', written_by: null });
    // '' is no device; the session setting of a server of the previous version is still read.
    await db('ideas').insert({ user_id: 'w', id: 'i2', text: 't', created_at: 0, written_by: '' });
    expect((await db('ideas').where({ user_id: 'w', id: 'i2' }).first('last_modified_by')).last_modified_by).to.equal(null);
    await db.transaction(async (trx) => {
      await trx.raw("SELECT set_config('sync.device_id', 'old-server-device', true)");
      await trx('ideas').insert({ user_id: 'w', id: 'i3', text: 't', created_at: 0 });
    });
    expect((await db('ideas').where({ user_id: 'w', id: 'i3' }).first('first_written_by')).first_written_by).to.equal('old-server-device');
  });
});
