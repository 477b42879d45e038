import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { adminApi, ApiError, tokenStore, type RuntimeFigures, type SyncSeries, type SyncStats } from './api';
import { BarTable, TimeChart, type Line } from './charts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The ranges offered, each with a bucket that gives 15 to 96 points. */
export const RANGES = [
  { id: '15m', label: 'Last 15 minutes', ms: 15 * MINUTE, bucket: MINUTE },
  { id: '1h', label: 'Last hour', ms: HOUR, bucket: MINUTE },
  { id: '6h', label: 'Last 6 hours', ms: 6 * HOUR, bucket: 5 * MINUTE },
  { id: '24h', label: 'Last 24 hours', ms: 24 * HOUR, bucket: 15 * MINUTE },
  { id: '7d', label: 'Last 7 days', ms: 7 * 24 * HOUR, bucket: 2 * HOUR },
] as const;
type Range = (typeof RANGES)[number];

const REFRESH_MS = 30_000;

/** Live figures; `live_connections` appears once the server counts them. */
type Runtime = RuntimeFigures & { live_connections?: number };

interface Loaded {
  readonly series: SyncSeries;
  readonly stats: SyncStats;
  readonly runtime: Runtime;
  readonly at: number;
}

const COLOURS = { pull: '#1f5fbf', push: '#8a4b00', failed: '#b00020' };

function describe(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 401) return `The server refused this token (${e.code}): ${e.message}`;
    if (e.status === 403) return `This token is not an admin token (${e.code}): ${e.message}`;
    return `${e.code}: ${e.message}`;
  }
  return `The server could not be reached: ${e instanceof Error ? e.message : String(e)}`;
}

/** Buckets end on a multiple of the bucket after now, so a refresh keeps the same buckets. */
function windowOf(range: Range, now: number): { from: number; to: number } {
  const to = (Math.floor(now / range.bucket) + 1) * range.bucket;
  return { from: to - range.ms, to };
}

function SignIn(props: { error: string | null; busy: boolean; onSubmit: (token: string) => void }) {
  const [token, setToken] = useState('');
  return (
    <main class="sign-in">
      <h1>Sync dashboard</h1>
      <form
        method="post"
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim()) props.onSubmit(token.trim());
        }}
      >
        <label for="token">Admin token</label>
        <p class="hint" id="token-hint">
          A JWT with <code>"role": "admin"</code>. It is kept in this tab only and sent to this server alone.
        </p>
        <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} required aria-describedby="token-hint" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={props.busy}>
          {props.busy ? 'Signing in…' : 'Sign in'}
        </button>
        {props.error && (
          <p class="error" role="alert" id="sign-in-error">
            {props.error}
          </p>
        )}
      </form>
    </main>
  );
}

function Dashboard(props: { data: Loaded }) {
  const { series, stats, runtime } = props.data;
  const perMinute = series.bucket_ms / MINUTE;
  const x = useMemo(() => series.buckets.map((b) => b.start), [series]);
  const syncLines = useMemo<Line[]>(
    () => [
      { label: 'Pulls/min', colour: COLOURS.pull, values: series.buckets.map((b) => b.pull.count / perMinute) },
      { label: 'Pushes/min', colour: COLOURS.push, values: series.buckets.map((b) => b.push.count / perMinute) },
      { label: 'Failures/min', colour: COLOURS.failed, values: series.buckets.map((b) => (b.pull.failures + b.push.failures) / perMinute) },
    ],
    [series],
  );
  const durationLines = useMemo<Line[]>(
    () => [
      { label: 'Pull p50', colour: COLOURS.pull, values: series.buckets.map((b) => b.pull.p50_duration_ms) },
      { label: 'Pull p95', colour: COLOURS.pull, dash: [6, 4], values: series.buckets.map((b) => b.pull.p95_duration_ms) },
      { label: 'Push p50', colour: COLOURS.push, values: series.buckets.map((b) => b.push.p50_duration_ms) },
      { label: 'Push p95', colour: COLOURS.push, dash: [6, 4], values: series.buckets.map((b) => b.push.p95_duration_ms) },
    ],
    [series],
  );
  const total = stats.pull.count + stats.push.count;
  const failures = series.buckets.reduce((a, b) => a + b.pull.failures + b.push.failures, 0);
  return (
    <>
      <section class="summary" aria-label="Totals for the range">
        <dl>
          <div>
            <dt>Syncs</dt>
            <dd id="total-syncs">{total}</dd>
          </div>
          <div>
            <dt>Failures</dt>
            <dd id="total-failures">{failures}</dd>
          </div>
          <div>
            <dt>Pull success</dt>
            <dd>{stats.pull.success_rate === null ? '–' : `${(100 * stats.pull.success_rate).toFixed(1)} %`}</dd>
          </div>
          <div>
            <dt>Push success</dt>
            <dd>{stats.push.success_rate === null ? '–' : `${(100 * stats.push.success_rate).toFixed(1)} %`}</dd>
          </div>
          <div>
            <dt>Users failing</dt>
            <dd id="total-failing">{stats.failing_users.length}</dd>
          </div>
        </dl>
      </section>
      <div class="grid">
        <TimeChart id="chart-syncs" title={`Syncs per minute (buckets of ${perMinute} min)`} unit="syncs / min" x={x} lines={syncLines} digits={2} />
        <TimeChart id="chart-durations" title="Duration per sync type, p50 and p95" unit="ms" x={x} lines={durationLines} />
        <BarTable
          id="chart-records"
          title="Records synced per table"
          columns={['Table']}
          valueColumns={['Pulled', 'Pushed']}
          rows={series.records_by_table.map((r) => ({ key: r.table, cells: [r.table], values: [r.pulled, r.pushed] }))}
          empty="No record was synced in this range."
        />
        <BarTable
          id="chart-conflicts"
          title="Conflicts by table, type and resolution"
          columns={['Table', 'Type', 'Resolution']}
          valueColumns={['Conflicts']}
          rows={series.conflicts.map((c) => ({ key: `${c.table}/${c.type}/${c.resolution}`, cells: [c.table, c.type, c.resolution], values: [c.count] }))}
          empty="No conflict in this range."
        />
      </div>
      <section class="panel" id="failing-users" aria-labelledby="failing-title">
        <h2 id="failing-title">Users in a failure streak</h2>
        <p class="hint">More than 3 failed syncs in a row, as the alerts count them; a success ends the streak.</p>
        {stats.failing_users.length === 0 ? (
          <p class="empty">No user is failing.</p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Failures in a row</th>
                  <th scope="col">Last error</th>
                  <th scope="col">Message</th>
                  <th scope="col">Last failure</th>
                </tr>
              </thead>
              <tbody>
                {stats.failing_users.map((u) => (
                  <tr key={u.user_id} data-user={u.user_id}>
                    <th scope="row">{u.user_id}</th>
                    <td>{u.streak}</td>
                    <td>
                      <code>{u.last_error_code ?? '–'}</code>
                    </td>
                    <td>{u.last_error_message ?? '–'}</td>
                    <td>{new Date(u.since).toLocaleString()}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {(runtime.pool || runtime.live_connections !== undefined) && (
        <section class="panel live" aria-labelledby="live-title">
          <h2 id="live-title">This server process, now</h2>
          <dl>
            {runtime.live_connections !== undefined && (
              <div id="live-connections">
                <dt>Live connections</dt>
                <dd>{runtime.live_connections}</dd>
              </div>
            )}
            {runtime.pool && (
              <div id="db-pool" data-pool={JSON.stringify(runtime.pool)}>
                <dt>Database pool</dt>
                <dd>
                  {runtime.pool.used} in use, {runtime.pool.free} idle of {runtime.pool.max}; {runtime.pool.pending} waiting
                </dd>
              </div>
            )}
          </dl>
        </section>
      )}
    </>
  );
}

export function App() {
  const [token, setToken] = useState<string | null>(() => tokenStore.get());
  const [rangeId, setRangeId] = useState<Range['id']>('1h');
  const [data, setData] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const range = RANGES.find((r) => r.id === rangeId) ?? RANGES[1];

  const load = useCallback(
    async (t: string) => {
      setBusy(true);
      try {
        const { from, to } = windowOf(range, Date.now());
        const [series, stats, runtime] = await Promise.all([adminApi.series(t, from, to, range.bucket), adminApi.stats(t, from, to), adminApi.runtime(t)]);
        setData({ series, stats, runtime, at: Date.now() });
        setError(null);
      } catch (e) {
        // A refused token signs out; anything else keeps the last figures on screen.
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          tokenStore.clear();
          setToken(null);
          setData(null);
        }
        setError(describe(e));
      } finally {
        setBusy(false);
      }
    },
    [range],
  );

  useEffect(() => {
    if (!token) return;
    void load(token);
    const timer = setInterval(() => void load(token), REFRESH_MS);
    return () => clearInterval(timer);
  }, [token, load]);

  if (!token) {
    return (
      <SignIn
        error={error}
        busy={busy}
        onSubmit={(t) => {
          tokenStore.set(t);
          setError(null);
          setToken(t);
        }}
      />
    );
  }
  return (
    <main class="dashboard" aria-busy={busy}>
      <header>
        <h1>Sync dashboard</h1>
        <div class="controls">
          <label for="range">Time range</label>
          <select id="range" value={rangeId} onChange={(e) => setRangeId((e.target as HTMLSelectElement).value as Range['id'])}>
            {RANGES.map((r) => (
              <option value={r.id} key={r.id}>
                {r.label}
              </option>
            ))}
          </select>
          <button type="button" onClick={() => void load(token)} disabled={busy}>
            Refresh
          </button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              tokenStore.clear();
              setToken(null);
              setData(null);
            }}
          >
            Sign out
          </button>
        </div>
        <p class="status" aria-live="polite" id="status" data-loaded-at={data?.at ?? ''} data-range={range.id}>
          {data ? `Updated ${new Date(data.at).toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.` : 'Loading…'}
        </p>
      </header>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {data && <Dashboard data={data} />}
    </main>
  );
}
