/**
 * `npm run demo`: the server on in-memory embedded PostgreSQL and two phones of one user running
 * the real mobile client (OP-SQLite's Node build, a SQLite file each), playing a short story. Every
 * step checks what it claims; the process exits 1 if any check fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { open } from '@op-engineering/op-sqlite';
import { pino } from 'pino';
import { signToken } from '../src/adapters/crypto/jwt-token-issuer';
import { loadConfig } from '../src/main/config';
import { startServer } from '../src/main/server';
import { AsyncStorageCheckpointStore, createSyncClient, FetchEventSource, OpSqliteDriver, type ConflictEvent, type NetworkMonitor, type OpSqliteDatabase, type SyncClient } from '../mobile/src';

/** A phone's network, switched by the story. */
class Network implements NetworkMonitor {
  private readonly listeners = new Set<(online: boolean) => void>();
  constructor(private online: boolean) {}
  isOnline = () => this.online;
  subscribe(l: (online: boolean) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(online: boolean) {
    this.online = online;
    for (const l of this.listeners) l(online);
  }
}

/** AsyncStorage's API over a Map (the phone's key-value store). */
const memoryStorage = () => {
  const m = new Map<string, string>();
  return { getItem: async (k: string) => m.get(k) ?? null, setItem: async (k: string, v: string) => void m.set(k, v), removeItem: async (k: string) => void m.delete(k) };
};

/** Resolves true once `probe` holds (checked at each status the device publishes), false after `timeoutMs`. */
function until(client: SyncClient, probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      queueMicrotask(() => stop());
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const stop = client.subscribe(() => void probe().then((ok) => ok && finish(true), () => undefined));
  });
}

export async function runDemo(print: (line: string) => void = console.log): Promise<boolean> {
  const config = loadConfig({ PGLITE_DATA_DIR: 'memory://', PORT: '0', LOG_LEVEL: 'warn', JWT_SECRET: 'demo-secret-0123456789abcdef0123456789abcdef' });
  const server = await startServer(config, { logger: pino({ level: 'warn' }) });
  const dir = mkdtempSync(join(tmpdir(), 'sync-demo-'));
  const devices: SyncClient[] = [];
  let failures = 0;
  const check = (ok: boolean, what: string) => {
    print(`   ${ok ? '✔' : '✘'} ${what}`);
    if (!ok) failures++;
  };
  const device = async (name: string, user: string, network: Network, live = false) => {
    const client = await createSyncClient({
      // Live sync: the server pokes when another device wrote (in the app: react-native-sse's EventSource).
      ...(live ? { live: { eventSource: (url: string, o: { headers: Record<string, string> }) => new FetchEventSource(url, o) } } : {}),
      db: new OpSqliteDriver(open({ name: `${name}.db`, location: dir }) as unknown as OpSqliteDatabase),
      checkpoints: new AsyncStorageCheckpointStore(memoryStorage()),
      network,
      server: { baseUrl: server.url, getToken: () => signToken(config.jwt, user), schemaVersion: 1 },
    });
    devices.push(client);
    return client;
  };
  const show = async (label: string, client: SyncClient, table: string, columns: string[]) => {
    const rows = await client.local.query(table, { orderBy: 'id' });
    print(`   ${label} ${table}: ${rows.length ? '' : '(none)'}`);
    for (const r of rows) print(`     ${columns.map((c) => `${c}=${JSON.stringify(r[c])}`).join('  ')}`);
    return rows;
  };

  try {
    print(`Server on ${server.url} (embedded PostgreSQL in memory).\n`);

    print('1. Maya captures notes on the underground: her phone is offline.');
    const phoneNet = new Network(false);
    const phone = await device('maya-phone', 'maya', phoneNet);
    await phone.local.create('captures', { id: 'c-plumber', type: 'text', raw_content: 'Call the plumber about the leak' });
    await phone.local.create('captures', { id: 'c-gift', type: 'audio', raw_content: 'file:///memos/gift.m4a', duration_ms: 5400 });
    await phone.local.create('todos', { id: 't-plumber', description: 'Call the plumber', priority: 'high' });
    const offline = await phone.sync();
    check(offline.isErr() && offline.error.kind === 'NETWORK_ERROR', 'the sync waits for the network; nothing is sent');
    check(phone.getStatus().pending === 3 && phone.getStatus().state === 'offline', `status: ${phone.getStatus().state}, ${phone.getStatus().pending} changes pending`);

    print('\n2. She comes out of the station: the phone is online and syncs.');
    phoneNet.set(true);
    const online = await phone.sync();
    check(online.isOk() && phone.getStatus().pending === 0, `pushed ${online.isOk() ? online.value.tables['captures']!.pushed + online.value.tables['todos']!.pushed : 0} records; nothing pending`);

    print('\n3. Her tablet syncs and gets them.');
    const tablet = await device('maya-tablet', 'maya', new Network(true), true);
    const first = await tablet.sync();
    check(first.isOk(), 'the tablet synced');
    const tabletCaptures = await show('tablet', tablet, 'captures', ['id', 'type', 'raw_content']);
    check(tabletCaptures.length === 2, 'the tablet holds both captures');

    print('\n4. Both edit the same todo before syncing again.');
    await phone.local.update('todos', 't-plumber', { state: 'done', completed_at: Date.now() });
    await tablet.local.update('todos', 't-plumber', { description: 'Call the plumber (ask for Ana)' });
    const heard: ConflictEvent[] = [];
    tablet.onConflict((events) => heard.push(...events));
    await phone.sync();
    await tablet.sync();
    await phone.sync();
    for (const [label, client] of [['phone ', phone], ['tablet', tablet]] as const) await show(label, client, 'todos', ['id', 'description', 'state', 'priority']);
    const [onPhone, onTablet] = [await phone.local.get('todos', 't-plumber'), await tablet.local.get('todos', 't-plumber')];
    check(
      onPhone?.['state'] === 'done' &&
        onPhone?.['description'] === 'Call the plumber (ask for Ana)' &&
        ['description', 'state', 'priority', 'completed_at'].every((c) => onPhone?.[c] === onTablet?.[c]),
      'merged column by column: the phone\'s "done" and the tablet\'s description, the same on both',
    );
    check(heard.length === 1 && heard[0]!.clientColumns.includes('description'), `the tablet's app was told: ${heard.map((e) => `${e.table}/${e.id} ${e.type}, its ${e.clientColumns.join(', ')} kept`).join('; ')}`);

    print('\n5. Maya deletes a capture on her phone.');
    await phone.local.delete('captures', 'c-gift');
    await phone.sync();
    await tablet.sync();
    const left = await show('tablet', tablet, 'captures', ['id', 'raw_content']);
    check(left.length === 1 && left[0]!['id'] === 'c-plumber', 'the tablet no longer shows it');

    print('\n6. Eve, another user, signs in on her own phone.');
    const eve = await device('eve-phone', 'eve', new Network(true));
    await eve.sync();
    const eveRows = (await eve.local.query('captures')).length + (await eve.local.query('todos')).length;
    check(eveRows === 0, 'Eve sees none of Maya\'s data');

    print('\n7. The tablet is open on the table (live); Maya captures a note on her phone.');
    tablet.start();
    await until(tablet, async () => tablet.getStatus().live && tablet.getStatus().state === 'idle');
    check(tablet.getStatus().live, 'the tablet holds the live channel');
    await phone.local.create('captures', { id: 'c-keys', type: 'text', raw_content: 'Spare keys are with Ana' });
    const syncing = Date.now();
    const shown = until(tablet, async () => (await tablet.local.get('captures', 'c-keys')) !== null, 10_000).then((ok) => ok && Date.now() - syncing);
    await phone.sync();
    const ms = await shown;
    check(ms !== false, `the tablet shows it ${ms} ms after the phone started its sync, without anyone syncing the tablet by hand`);
    tablet.stop();

    print(failures === 0 ? '\nEvery step held.' : `\n${failures} step(s) did not hold.`);
    return failures === 0;
  } finally {
    for (const d of devices) await d.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runDemo().then(
    (ok) => process.exit(ok ? 0 : 1),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
