import { expect } from 'chai';
import { clientChangedColumns, decide, mergeColumns, TABLES, tableSpec, type ColumnSpec, type PushedRecord, type ServerRow, type TableSpec, type WireRecord, type WireValue } from '../../../src/domain';

/**
 * The conflict policy (spec §4.3, docs/protocol.md): decide() over every table, and mergeColumns
 * against each table's server-owned columns as the schema declares them.
 */

/** Who owns what in a conflict, as spec §4.3 states it. */
const SERVER_OWNED: Record<string, string[]> = {
  captures: ['normalized_text', 'state'],
  todos: ['priority'],
  thoughts: [],
  ideas: [],
  projects: [],
};

/** Two different valid values of a column: the server's and the client's. */
function valuesOf(spec: ColumnSpec): [WireValue, WireValue] {
  if (spec.enum) return [spec.enum[0]!, spec.enum[1]!];
  switch (spec.type) {
    case 'text':
      return ['server', 'client'];
    case 'integer':
      return [7, 42];
    case 'boolean':
      return [false, true];
    case 'json_array':
      return ['["server"]', '["client"]'];
  }
}

function rows(table: TableSpec): { server: WireRecord; client: WireRecord } {
  const server: WireRecord = { id: 'r1', created_at: 1 };
  const client: WireRecord = {};
  for (const [column, spec] of Object.entries(table.columns)) [server[column], client[column]] = valuesOf(spec);
  return { server, client };
}

const pushed = (values: WireRecord, changed: string[] | null = null): PushedRecord => ({ id: 'r1', values, changed });
const serverRow = (values: WireRecord, o: Partial<ServerRow> = {}): ServerRow => ({ values, deleted: false, lastModifiedAt: 200, writtenByPusher: false, ...o });

describe('conflict policy', () => {
  it('the schema marks exactly the server-owned columns of spec §4.3', () => {
    expect(TABLES.map((t) => t.name)).to.have.members(Object.keys(SERVER_OWNED));
    for (const t of TABLES) {
      const owned = Object.entries(t.columns).filter(([, s]) => s.serverOwned).map(([c]) => c);
      expect(owned, t.name).to.have.members(SERVER_OWNED[t.name]!);
    }
  });

  for (const table of TABLES) {
    describe(table.name, () => {
      const { server, client } = rows(table);
      const owned = SERVER_OWNED[table.name]!;
      const others = Object.keys(table.columns).filter((c) => !owned.includes(c));

      it('mergeColumns: server-owned columns keep the server value, the others take the client value', () => {
        const merge = mergeColumns(table, pushed(client), server);
        expect(merge.serverColumns).to.have.members(owned);
        expect(merge.clientColumns).to.have.members(others);
        for (const c of owned) expect(merge.values[c], c).to.deep.equal(server[c]);
        for (const c of others) expect(merge.values[c], c).to.deep.equal(client[c]);
        expect(merge.values['id']).to.equal('r1');
      });

      it('mergeColumns: with _changed, columns not named keep the server value even when pushed', () => {
        const named = others[0]!;
        const merge = mergeColumns(table, pushed(client, [named, ...owned]), server);
        expect(merge.clientColumns).to.deep.equal([named]);
        expect(merge.serverColumns).to.have.members(owned);
        expect(merge.values).to.deep.equal({ ...server, [named]: client[named] });
      });

      it('decide: a stale update is merged per column and reported', () => {
        const decision = decide(table, { kind: 'upsert', record: pushed(client) }, serverRow(server), 100);
        expect(decision).to.deep.include({ action: 'update', merged: true });
        if (decision.action !== 'update') throw new Error('unreachable');
        expect(decision.values).to.deep.equal(mergeColumns(table, pushed(client), server).values);
        expect(decision.conflict).to.deep.include({ table: table.name, id: 'r1', type: 'update_update', resolution: 'per_column' });
        expect(decision.conflict!.serverColumns).to.have.members(owned);
        expect(decision.conflict!.clientColumns).to.have.members(others);
      });

      for (const [why, row, lastPulledAt] of [
        ['the server row is not newer than the last pull', serverRow(server, { lastModifiedAt: 100 }), 100],
        ['the server row is older than the last pull', serverRow(server, { lastModifiedAt: 50 }), 100],
        ['the pusher wrote the newer version itself', serverRow(server, { writtenByPusher: true }), 100],
      ] as const) {
        it(`decide: no conflict when ${why}: every pushed value, server-owned too, is applied`, () => {
          const decision = decide(table, { kind: 'upsert', record: pushed(client) }, row, lastPulledAt);
          expect(decision).to.deep.equal({ action: 'update', values: { ...server, ...client }, merged: false });
        });
      }
    });
  }

  describe('decide, whatever the table', () => {
    const ideas = tableSpec('ideas')!;
    const live = serverRow({ id: 'i1', text: 'server', thought_id: null, created_at: 1 });

    it('creates a row that does not exist', () => {
      const record = pushed({ text: 'new' });
      expect(decide(ideas, { kind: 'upsert', record }, undefined, 100)).to.deep.equal({ action: 'create', record });
    });

    it('a conflict without last_pulled_at: any existing row written by someone else is newer', () => {
      expect(decide(ideas, { kind: 'upsert', record: pushed({ text: 'mine' }) }, serverRow(live.values, { lastModifiedAt: 1 }), null)).to.deep.include({ merged: true });
    });

    it('deleting a missing or deleted row does nothing', () => {
      expect(decide(ideas, { kind: 'delete', id: 'i1' }, undefined, 100)).to.deep.equal({ action: 'none' });
      expect(decide(ideas, { kind: 'delete', id: 'i1' }, { ...live, deleted: true }, 100)).to.deep.equal({ action: 'none' });
    });

    it("a delete without conflict is the device's own delete", () => {
      expect(decide(ideas, { kind: 'delete', id: 'i1' }, { ...live, lastModifiedAt: 90 }, 100)).to.deep.equal({ action: 'delete', merged: false });
      expect(decide(ideas, { kind: 'delete', id: 'i1' }, { ...live, writtenByPusher: true }, 100)).to.deep.equal({ action: 'delete', merged: false });
    });

    it('delete against a newer server update: the delete wins, reported as delete_update', () => {
      expect(decide(ideas, { kind: 'delete', id: 'i1' }, live, 100)).to.deep.equal({
        action: 'delete',
        merged: true,
        conflict: { table: 'ideas', id: 'i1', type: 'delete_update', resolution: 'delete_wins', clientColumns: [], serverColumns: [] },
      });
    });

    it('update against a newer server delete: the delete wins, reported as update_delete', () => {
      const decision = decide(ideas, { kind: 'upsert', record: pushed({ text: 'mine' }) }, { ...live, deleted: true }, 100);
      expect(decision).to.deep.equal({
        action: 'restamp_delete',
        conflict: { table: 'ideas', id: 'r1', type: 'update_delete', resolution: 'delete_wins', clientColumns: [], serverColumns: ['text'] },
      });
    });

    it('never brings a tombstone back, even when the delete is older than the last pull or the pusher made it', () => {
      for (const row of [{ ...live, deleted: true, lastModifiedAt: 10 }, { ...live, deleted: true, writtenByPusher: true }]) {
        expect(decide(ideas, { kind: 'upsert', record: pushed({ text: 'mine' }) }, row, 100).action).to.equal('restamp_delete');
      }
    });
  });

  describe('clientChangedColumns', () => {
    const todos = tableSpec('todos')!;
    it('counts every pushed column of the table without _changed, never created_at', () => {
      expect(clientChangedColumns(todos, pushed({ state: 'done', priority: 'low', created_at: 5 }))).to.have.members(['state', 'priority']);
    });
    it('counts only pushed columns that _changed names', () => {
      expect(clientChangedColumns(todos, pushed({ state: 'done', priority: 'low' }, ['state', 'deadline']))).to.deep.equal(['state']);
      expect(clientChangedColumns(todos, pushed({ state: 'done' }, []))).to.deep.equal([]);
    });
  });
});
