import { expect } from 'chai';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';
import { WatermelonDevice, watermelonLogger } from '../support/watermelondb-app';

/**
 * A WatermelonDB app whose cursor is older than the deletes the server still keeps (410
 * CURSOR_EXPIRED, docs/watermelondb.md "Deletes the server no longer keeps"): the glue pulls
 * everything, deletes the unchanged records the server no longer has, keeps the local edits, and
 * synchronize() pushes them.
 */
const DAY = 24 * 60 * 60 * 1000;

describeEachDatabase('WatermelonDB app after the server purged deletes', (ctx) => {
  let server: TestServer;
  let offset = 0;
  const original = { ...watermelonLogger };
  const warned: string[] = [];
  before(async () => {
    // The full pull's "created" records the phone already has are reported (and updated).
    watermelonLogger.warn = (...m: unknown[]) => void warned.push(m.map(String).join(' '));
    watermelonLogger.error = (...m: unknown[]) => void warned.push(m.map(String).join(' '));
    watermelonLogger.log = () => undefined;
    server = await startTestServer(ctx.database.db, { RETENTION_INTERVAL_MINUTES: '0' }, { clock: { now: () => Date.now() + offset } });
  });
  after(async () => {
    Object.assign(watermelonLogger, original);
    await server.close();
  });

  it('resyncs from the start: purged deletes are applied, local edits kept and pushed', async () => {
    const phone = await WatermelonDevice.open(server, 'wm-ret');
    const tablet = await WatermelonDevice.open(server, 'wm-ret');
    for (let i = 0; i < 5; i++) await tablet.create('ideas', { id: `idea-${i}`, text: `idea ${i}`, created_at: 1000 });
    await tablet.sync();
    await phone.sync();
    expect((await phone.rows('ideas')).map((r) => r['id'])).to.deep.equal(['idea-0', 'idea-1', 'idea-2', 'idea-3', 'idea-4']);

    // The phone edits offline; the tablet deletes two ideas; the server purges those deletes.
    await phone.update('ideas', 'idea-1', { text: 'edited on the phone' });
    await tablet.delete('ideas', 'idea-2');
    await tablet.delete('ideas', 'idea-3');
    await tablet.sync();
    offset = 91 * DAY;
    expect((await server.purgeExpired()).tombstones).to.equal(2);
    // Asked from the old cursor, the server refuses: the phone would miss the deletes.
    const old = await server.client('wm-ret').pull({ last_pulled_at: 1 });
    expect(old.status).to.equal(410);

    await phone.sync();
    expect(await phone.hasUnsyncedChanges()).to.equal(false);
    const ideas = await phone.rows('ideas');
    expect(ideas.map((r) => r['id'])).to.deep.equal(['idea-0', 'idea-1', 'idea-4']);
    expect(ideas.find((r) => r['id'] === 'idea-1')).to.include({ text: 'edited on the phone' });
    await tablet.sync();
    expect(await tablet.rows('ideas')).to.deep.equal(ideas);
    // Reported, as docs/watermelondb.md says, only for the records the phone already had.
    expect(new Set(warned.filter((w) => /already exists locally/.test(w))).size).to.be.within(1, 3);
  });
});
