import { expect } from 'chai';
import { pino } from 'pino';
import { describeEachDatabase } from '../support/databases';
import { deviceRows, openDevice, type Device } from '../support/device';
import { startTestServer, type TestServer } from '../support/server';

/**
 * Issue 20, item 9: one value the server cannot decrypt (a corrupted ciphertext, a lost key, a
 * row marked encrypted holding plaintext) made every pull page and push touching its record a
 * retryable INTERNAL, so the client retried without end and the user's sync stopped for good.
 * Now the pull leaves the record out and names it under `undecryptable`, a push of a change to it
 * is refused for that record alone (the client quarantines it, the rest syncs), an operator alert
 * is logged, and a delete of the record goes through. Real clients, real server, real database;
 * the corruption is written straight into the database.
 */
describeEachDatabase('a record the server cannot decrypt (end to end)', (ctx) => {
  let server: TestServer;
  let lines: any[];
  const open: Device[] = [];
  beforeEach(async () => {
    lines = [];
    server = await startTestServer(ctx.database.db, {}, { logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }) });
  });
  afterEach(async () => {
    for (const d of open.splice(0)) await d.client.close().catch(() => undefined);
    await server.close();
  });
  const device = async (user: string) => {
    const d = await openDevice(server, user);
    open.push(d);
    return d;
  };
  const syncOk = async (d: Device) => {
    const r = await d.client.sync();
    if (r.isErr()) throw new Error(`sync failed: ${JSON.stringify(r.error)}`);
    return r.value;
  };
  const alerts = () => lines.filter((l) => l.alert === 'undecryptable_record');

  for (const [how, corrupt] of [
    // One character of the ciphertext changed: GCM's tag no longer matches.
    ['a tampered ciphertext', (stored: string) => `${stored.slice(0, -3)}${stored.at(-3) === 'A' ? 'B' : 'A'}${stored.slice(-2)}`],
    // A row marked encrypted whose value is plaintext (item 10): refused, not sent as if clear.
    ['plaintext in a row marked encrypted', () => 'not a ciphertext at all'],
  ] as const) {
    it(`${how}: the other records keep syncing, the record is left out and quarantined, the operators are told, and a delete goes through`, async function () {
      this.timeout(60_000);
      const phone = await device('uma');
      await phone.client.local.create('captures', { id: 'bad', type: 'text', raw_content: 'will be corrupted' });
      await phone.client.local.create('captures', { id: 'good', type: 'text', raw_content: 'stays readable' });
      await phone.client.local.create('todos', { id: 't1', description: 'a todo' });
      await syncOk(phone);

      const stored = await ctx.database.db('captures').where({ user_id: 'uma', id: 'bad' }).first('raw_content', 'encrypted');
      expect(stored.encrypted).to.equal(true);
      await ctx.database.db('captures').where({ user_id: 'uma', id: 'bad' }).update({ raw_content: corrupt(stored.raw_content) });

      // A new device's first sync: everything but the bad record, and the pull named it.
      const tablet = await device('uma');
      await syncOk(tablet);
      expect((await deviceRows(tablet, 'captures')).map((r) => r['id'])).to.deep.equal(['good']);
      expect((await deviceRows(tablet, 'todos')).map((r) => r['id'])).to.deep.equal(['t1']);
      const page = await server.client('uma').pull({ last_pulled_at: 0 });
      expect(page.status, JSON.stringify(page.body)).to.equal(200);
      expect(page.body.changes.captures.created.map((r: any) => r.id)).to.deep.equal(['good']);
      expect(page.body.undecryptable).to.deep.equal([{ table: 'captures', id: 'bad' }]);
      expect(alerts().length, 'operator alerts').to.be.greaterThan(0);
      expect(alerts()[0]).to.include({ level: 50, user_id: 'uma', table: 'captures', id: 'bad' });

      // The phone edits both: the bad one is refused for itself alone and quarantined; the good one syncs.
      await phone.client.local.update('captures', 'bad', { raw_content: 'edited on the phone' });
      await phone.client.local.update('captures', 'good', { raw_content: 'edited too' });
      const report = await syncOk(phone);
      expect(report.tables['captures']).to.include({ quarantined: 1 });
      expect((await phone.client.listQuarantined()).map((q) => [q.table, q.id])).to.deep.equal([['captures', 'bad']]);
      expect((await phone.client.listQuarantined())[0]!.reason).to.match(/cannot decrypt/);
      await syncOk(tablet);
      expect((await deviceRows(tablet, 'captures')).map((r) => [r['id'], r['raw_content']])).to.deep.equal([['good', 'edited too']]);

      // The user deletes it: the delete goes through, and the tablet never had it.
      await phone.client.local.delete('captures', 'bad');
      await phone.client.retryQuarantined('captures', 'bad');
      await syncOk(phone);
      expect(await phone.client.listQuarantined()).to.deep.equal([]);
      expect(phone.client.getStatus()).to.include({ pending: 0, quarantined: 0 });
      const row = await ctx.database.db('captures').where({ user_id: 'uma', id: 'bad' }).first('_status');
      expect(row._status).to.equal('deleted');
      await syncOk(tablet);
      const after = await server.client('uma').pull({ last_pulled_at: 0 });
      expect(after.body.undecryptable ?? []).to.deep.equal([]);
      expect(after.body.changes.captures.created.map((r: any) => r.id)).to.deep.equal(['good']);
    });
  }
});
