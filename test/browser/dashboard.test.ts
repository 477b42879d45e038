import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { getDatabase, type TestDatabase } from '../support/databases';
import { openDevice, type Device } from '../support/device';
import { startTestServer, type ApiClient, type TestServer } from '../support/server';

/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core): real mobile
 * clients and REST clients make traffic, server-side conflicts and one user's failure streak
 * against the real server; the test signs in by keyboard, reads the points each chart plotted
 * (the figure's data-series) and checks them against sync_logs, lists the failing user, refuses a
 * wrong token, measures the contrast of the main colours and saves a screenshot in .ci/out/.
 *
 * On PGlite only: what the page shows comes from the admin API, whose SQL the admin-series and
 * admin-stats suites check on both databases; a second browser run would test the browser twice.
 */

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../../', import.meta.url).pathname;
const MIN = 60_000;

interface LogRow {
  sync_type: 'pull' | 'push';
  started_at: string | number;
  duration_ms: number;
  status: string;
  records_by_table: Record<string, number> | string;
}

/** The exact percentile by nearest rank: the smallest value with at least p of them at or below it. */
function nearestRank(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1]!;
}

/** sRGB relative luminance and the WCAG contrast ratio of two `rgb(…)` colours. */
function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const [r, g, bl] = (c.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('dashboard in headless Chromium [pglite]', function () {
  this.timeout(180_000);
  let database: TestDatabase;
  let server: TestServer;
  let browser: Browser;
  const devices: Device[] = [];
  let requests = 0;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      const why = `no ${CHROMIUM}; install it with: apt-get update && apt-get install -y chromium`;
      // .ci/run installs it: in CI a missing browser is a failure, not a skip.
      if (process.env['CI']) throw new Error(why);
      console.warn(`      skipped: ${why}`);
      this.skip();
    }
    // The page the server serves is the one npm start would build.
    const build = spawnSync(process.execPath, ['scripts/build-admin.mjs', '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
    expect(build.status, `${build.stdout}\n${build.stderr}`).to.equal(0);
    database = await getDatabase('pglite');
    await database.reset();
    server = await startTestServer(database.db);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    for (const d of devices) await d.client.close().catch(() => undefined);
    await browser?.close();
    await server?.close();
  });

  async function device(user: string, wrapPush?: () => Promise<void>): Promise<Device> {
    const d = await openDevice(server, user, wrapPush ? { wrap: (inner) => ({ pull: (p) => inner.pull(p), push: async (b) => (await wrapPush(), inner.push(b)) }) } : {});
    devices.push(d);
    return d;
  }

  async function ok(d: Device): Promise<void> {
    const r = await d.client.sync();
    if (r.isErr()) throw new Error(`sync failed: ${JSON.stringify(r.error)}`);
  }

  async function api(c: ApiClient, body: unknown, status: number): Promise<any> {
    requests++;
    const r = await c.push(body);
    expect(r.status, JSON.stringify(r.body)).to.equal(status);
    return r.body;
  }

  /** Traffic: two phones of alice (one server-side conflict), bob's REST pushes (two more), carol's failure streak. */
  async function makeTraffic(): Promise<void> {
    const laptop = await device('alice');
    let laptopFirst = true;
    // The laptop's edit lands between the phone's pull and its push: the server resolves the conflict.
    const phone = await device('alice', async () => {
      if (!laptopFirst) return;
      laptopFirst = false;
      await ok(laptop);
    });
    for (let i = 1; i <= 3; i++) await phone.client.local.create('captures', { id: `c${i}`, type: 'text', raw_content: `note ${i}` });
    await phone.client.local.create('todos', { id: 't1', description: 'plan trip', priority: 'low' });
    laptopFirst = false;
    await ok(phone);
    await ok(laptop);
    await phone.client.local.update('todos', 't1', { priority: 'high' });
    await laptop.client.local.update('todos', 't1', { state: 'done' });
    laptopFirst = true;
    await ok(phone);
    await ok(laptop);

    // bob, over REST from two devices: a row deleted on one and updated on the other, and the reverse.
    const bobPhone = server.client('bob', 'bob-phone');
    const bobTablet = server.client('bob', 'bob-tablet');
    const first = await api(bobPhone, { last_pulled_at: null, changes: { ideas: { created: [{ id: 'i1', text: 'an idea' }] }, projects: { created: [{ id: 'p1', name: 'home' }] } } }, 200);
    await api(bobTablet, { last_pulled_at: first.timestamp, changes: { ideas: { deleted: ['i1'] }, projects: { updated: [{ id: 'p1', name: 'house' }] } } }, 200);
    const late = await api(bobPhone, { last_pulled_at: first.timestamp, changes: { ideas: { updated: [{ id: 'i1', text: 'still here?' }] }, projects: { deleted: ['p1'] } } }, 200);
    expect(late.conflicts.map((c: any) => [c.table, c.type, c.resolution])).to.have.deep.members([
      ['ideas', 'update_delete', 'delete_wins'],
      ['projects', 'delete_update', 'delete_wins'],
    ]);

    // carol's app keeps sending a todo in a state the server does not know: five failures in a row.
    const carol = server.client('carol', 'carol-phone');
    for (let i = 0; i < 5; i++) await api(carol, { changes: { todos: { updated: [{ id: 't', state: 'lost' }] } } }, 400);
    requests += devices.reduce((n, d) => n + d.requests.length, 0);
  }

  /** The sync_logs rows, once every request made above is written (they are written off the request path). */
  async function logged(): Promise<LogRow[]> {
    return until(`${requests} rows in sync_logs`, async () => {
      const rows = (await database.db('sync_logs').select('sync_type', 'started_at', 'duration_ms', 'status', 'records_by_table')) as LogRow[];
      return rows.length === requests ? rows : undefined;
    });
  }

  // Page-side code is passed as strings: the tests are type-checked without the DOM's types.
  async function signIn(page: Page, token: string): Promise<void> {
    await page.goto(`${server.url}/admin`);
    await page.locator('#token').waitFor();
    // By keyboard: the token field is the first stop, the button the next, Enter submits.
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string | undefined>('document.activeElement?.id')).to.equal('token');
    await page.keyboard.type(token, { delay: 0 });
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string | undefined>('document.activeElement?.textContent')).to.equal('Sign in');
    await page.keyboard.press('Enter');
  }

  const series = async (page: Page, id: string) => JSON.parse((await page.locator(`#${id}`).getAttribute('data-series'))!);

  /** What each time chart must hold for buckets `x`, computed here from the rows themselves. */
  function expectTimeCharts(rows: LogRow[], x: number[], syncs: any, durations: any): void {
    const bucket = x[1]! - x[0]!;
    const perMinute = bucket / MIN;
    const inBucket = (start: number, type?: string) => rows.filter((r) => Number(r.started_at) >= start && Number(r.started_at) < start + bucket && (!type || r.sync_type === type));
    expect(syncs.x).to.deep.equal(x);
    expect(syncs.series['Pulls/min']).to.deep.equal(x.map((s) => inBucket(s, 'pull').length / perMinute));
    expect(syncs.series['Pushes/min']).to.deep.equal(x.map((s) => inBucket(s, 'push').length / perMinute));
    expect(syncs.series['Failures/min']).to.deep.equal(x.map((s) => inBucket(s).filter((r) => r.status === 'failure').length / perMinute));
    // Every sync is plotted: the per-minute rates add up to the requests made.
    const total = (name: string) => (syncs.series[name] as number[]).reduce((a, b) => a + b, 0) * perMinute;
    expect(total('Pulls/min') + total('Pushes/min')).to.be.closeTo(requests, 1e-9);
    expect(total('Failures/min')).to.be.closeTo(5, 1e-9);
    for (const [label, type, p] of [['Pull p50', 'pull', 0.5], ['Pull p95', 'pull', 0.95], ['Push p50', 'push', 0.5], ['Push p95', 'push', 0.95]] as const) {
      const want = x.map((s) => nearestRank(inBucket(s, type).map((r) => r.duration_ms), p));
      const got = durations.series[label] as Array<number | null>;
      expect(got.map((v) => v === null), label).to.deep.equal(want.map((v) => v === null));
      // From the duration histogram (docs/operations.md): exact under 20 ms, within 5 % above.
      got.forEach((v, i) => v !== null && expect(v, `${label} at ${x[i]}`).to.be.closeTo(want[i]!, want[i]! < 20 ? 0 : 0.05 * want[i]!));
    }
    expect(durations.series['Pull p50'].some((v: number | null) => v !== null)).to.equal(true);
  }

  it('shows the traffic, the conflicts and the failing user to an admin, by keyboard, readable, after refusing a wrong token', async () => {
    await makeTraffic();
    const rows = await logged();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const violations: string[] = [];
    const urls: string[] = [];
    page.on('console', (m) => /Content Security Policy|Refused to/i.test(m.text()) && violations.push(m.text()));
    page.on('pageerror', (e) => violations.push(e.message));
    page.on('request', (r) => urls.push(r.url()));

    // A token the server did not sign is refused, and the page says so; so is a user's token.
    const [head, payload] = server.token('ops', { admin: true }).split('.') as [string, string];
    await signIn(page, `${head}.${payload}.forged`);
    await expect(await page.locator('#sign-in-error').textContent({ timeout: 10_000 })).to.match(/refused this token \(TOKEN_INVALID\)/);
    expect(await page.evaluate<number>('sessionStorage.length')).to.equal(0);
    const [errorFg, errorBg] = await page.evaluate<[string, string]>(`(() => { const s = getComputedStyle(document.getElementById('sign-in-error')); return [s.color, s.backgroundColor]; })()`);
    expect(contrast(errorFg, errorBg), `the error: ${errorFg} on ${errorBg}`).to.be.at.least(4.5);
    await signIn(page, server.token('mallory'));
    await page.locator('#sign-in-error', { hasText: 'not an admin token' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('.dashboard').count()).to.equal(0);

    const token = server.token('ops', { admin: true });
    await signIn(page, token);
    await page.locator('#status[data-range="1h"][data-loaded-at]:not([data-loaded-at=""])').waitFor({ timeout: 15_000 });
    expect(await page.evaluate<string[]>('Object.keys(sessionStorage)')).to.deep.equal(['note-sync.admin-token']);

    // The last hour by the minute: 60 buckets, the last one holding now.
    const syncs = await series(page, 'chart-syncs');
    const x = syncs.x as number[];
    expect(x).to.have.length(60);
    expect(x[1]! - x[0]!).to.equal(MIN);
    expect(Date.now()).to.be.within(x[59]!, x[59]! + 2 * MIN);
    expectTimeCharts(rows, x, syncs, await series(page, 'chart-durations'));

    // Records per table, pulled and pushed, as sync_logs counted them.
    const records = new Map<string, [number, number]>();
    for (const r of rows) {
      const byTable = typeof r.records_by_table === 'string' ? JSON.parse(r.records_by_table) : r.records_by_table;
      for (const [table, n] of Object.entries(byTable as Record<string, number>)) {
        const v = records.get(table) ?? [0, 0];
        v[r.sync_type === 'pull' ? 0 : 1] += n;
        records.set(table, v);
      }
    }
    expect(await series(page, 'chart-records')).to.deep.equal([...records].sort(([a], [b]) => a.localeCompare(b)).map(([t, [pulled, pushed]]) => [t, pulled, pushed]));
    expect(records.get('captures')).to.deep.equal([3, 3]);
    expect(await series(page, 'chart-conflicts')).to.deep.equal([
      ['ideas', 'update_delete', 'delete_wins', 1],
      ['projects', 'delete_update', 'delete_wins', 1],
      ['todos', 'update_update', 'per_column', 1],
    ]);

    // carol is listed with her streak and last error; nobody else fails.
    const failing = page.locator('#failing-users tbody tr');
    expect(await failing.count()).to.equal(1);
    const cells = await failing.first().locator('th, td').allTextContents();
    expect(cells.slice(0, 3)).to.deep.equal(['carol', '5', 'VALIDATION_FAILED']);
    expect(cells[3]).to.match(/invalid|state/i);
    expect(await page.locator('#total-syncs').textContent()).to.equal(String(requests));
    expect(await page.locator('#total-failures').textContent()).to.equal('5');
    // The pool panel shows this process's pool (PGlite: one connection); no live-connections panel yet.
    const pool = JSON.parse((await page.locator('#db-pool').getAttribute('data-pool'))!);
    expect(pool.max).to.equal((database.db.client as { pool: { max: number } }).pool.max);
    expect(await page.locator('#live-connections').count()).to.equal(0);

    // Readable: the main text and background colours pass WCAG AA (4.5:1).
    // A string: tsx would also wrap a function's inner helpers in a name shim the page lacks.
    const pairs: Array<{ s: string; fg: string; bg: string }> = await page.evaluate(`(() => {
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const bg = getComputedStyle(e).backgroundColor;
          if (bg && bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg;
        }
        return 'rgb(255, 255, 255)';
      };
      const selectors = ${JSON.stringify(['body', 'h1', 'figcaption', 'label', '.status', '.hint', 'summary', 'thead th', 'tbody th', 'tbody td', 'dt', 'dd', 'button', 'button.secondary', 'select', '.u-legend'])};
      return selectors.flatMap((s) => {
        const el = document.querySelector(s);
        return el ? [{ s, fg: getComputedStyle(el).color, bg: background(el) }] : [];
      });
    })()`);
    expect(pairs.map((p) => p.s)).to.include.members(['body', 'h1', 'label', '.hint', 'thead th', 'tbody td', 'button', 'select', 'summary']);
    for (const p of pairs) expect(contrast(p.fg, p.bg), `${p.s}: ${p.fg} on ${p.bg}`).to.be.at.least(4.5);

    mkdirSync(`${ROOT}.ci/out`, { recursive: true });
    await page.screenshot({ path: `${ROOT}.ci/out/dashboard.png`, fullPage: true });

    // By keyboard: the range selector is the first stop of the page; the arrow picks the next range.
    await page.evaluate('document.activeElement?.blur()');
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string | undefined>('document.activeElement?.id')).to.equal('range');
    await page.keyboard.press('ArrowDown');
    await page.locator('#status[data-range="6h"]').waitFor({ timeout: 10_000 });
    const loadedAt = await page.locator('#status').getAttribute('data-loaded-at');
    await until('the 6-hour range', async () => (await series(page, 'chart-syncs')).x.length === 72 || undefined);
    const six = await series(page, 'chart-syncs');
    expect(six.x[1] - six.x[0]).to.equal(5 * MIN);
    expectTimeCharts(rows, six.x, six, await series(page, 'chart-durations'));
    expect(loadedAt).to.not.equal('');
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string | undefined>('document.activeElement?.textContent')).to.equal('Refresh');

    // No CSP violation, no script error, nothing fetched from elsewhere, the token never in a URL.
    expect(violations).to.deep.equal([]);
    expect(urls.filter((u) => !u.startsWith(server.url))).to.deep.equal([]);
    expect(urls.filter((u) => u.includes(payload) || u.includes(token.split('.')[1]!))).to.deep.equal([]);
    await page.close();
  });
});
