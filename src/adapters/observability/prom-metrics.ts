import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Metrics, SyncLogEntry } from '../../application/ports';

export interface PoolProbe {
  (): { used: number; free: number; pending: number };
}

/** Pulls read on each side, and the read replicas as last checked (DATABASE_READ_URL). */
export interface ReplicaProbe {
  (): { reads: { primary: number; replica: number }; replicas: ReadonlyArray<{ name: string; usable: boolean; lagMs: number }> };
}

/** Metrics on prom-client, in a registry of its own (so several servers can share a process). */
export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly requestSeconds = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route, method and status.',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly records = new Counter({ name: 'sync_records_total', help: 'Records synced, by table and direction (in = pushed, out = pulled).', labelNames: ['table', 'direction'], registers: [this.registry] });
  private readonly syncs = new Counter({ name: 'sync_operations_total', help: 'Pulls and pushes, by type and status.', labelNames: ['type', 'status'], registers: [this.registry] });
  private readonly conflicts = new Counter({ name: 'sync_conflicts_total', help: 'Conflicts resolved, by table and type.', labelNames: ['table', 'type'], registers: [this.registry] });
  private readonly batchSize = new Histogram({
    name: 'sync_push_batch_records',
    help: 'Records per push.',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 5000],
    registers: [this.registry],
  });
  private readonly dropped = new Counter({ name: 'sync_log_dropped_total', help: 'sync_logs entries dropped (queue full or write failed).', registers: [this.registry] });
  private readonly writeFailures = new Counter({ name: 'sync_log_write_failures_total', help: 'Failed sync_logs batch writes.', registers: [this.registry] });

  private readonly liveOpen = new Gauge({ name: 'sync_live_connections', help: 'Live channels (GET /api/sync/live) open in this process.', registers: [this.registry] });
  private readonly livePokes = new Counter({ name: 'sync_live_pokes_total', help: 'Events written to live channels (pokes and check-now pokes).', registers: [this.registry] });
  private readonly liveDrops = new Counter({
    name: 'sync_live_dropped_total',
    help: 'Live channels dropped (slow_client: it never read) or refused at open (per_user, per_process limits).',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  constructor(poolProbe?: PoolProbe, replicaProbe?: ReplicaProbe) {
    collectDefaultMetrics({ register: this.registry });
    if (replicaProbe) this.replicaMetrics(replicaProbe);
    if (poolProbe) {
      new Gauge({
        name: 'db_pool_connections',
        help: 'Database pool connections by state (used, free, pending acquisitions).',
        labelNames: ['state'],
        registers: [this.registry],
        collect() {
          const p = poolProbe();
          this.set({ state: 'used' }, p.used);
          this.set({ state: 'free' }, p.free);
          this.set({ state: 'pending' }, p.pending);
        },
      });
    }
  }

  private replicaMetrics(probe: ReplicaProbe): void {
    const counted = { primary: 0, replica: 0 };
    new Counter({
      name: 'sync_pull_reads_total',
      help: 'Pull pages read, by database: a read replica (DATABASE_READ_URL) or the primary.',
      labelNames: ['database'],
      registers: [this.registry],
      collect() {
        const { reads } = probe();
        for (const side of ['primary', 'replica'] as const) {
          this.inc({ database: side }, reads[side] - counted[side]);
          counted[side] = reads[side];
        }
      },
    });
    new Gauge({
      name: 'sync_replica_usable',
      help: 'Whether a read replica serves pulls now (1) or is skipped for the primary (0: down, lagging, or not a standby).',
      labelNames: ['replica'],
      registers: [this.registry],
      collect() {
        for (const r of probe().replicas) this.set({ replica: r.name }, r.usable ? 1 : 0);
      },
    });
    new Gauge({
      name: 'sync_replica_lag_seconds',
      help: 'How stale a read replica was at its last check (+Inf: unknown or unreachable).',
      labelNames: ['replica'],
      registers: [this.registry],
      collect() {
        for (const r of probe().replicas) this.set({ replica: r.name }, r.lagMs / 1000);
      },
    });
  }

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    this.requestSeconds.observe({ route, method, status: String(status) }, seconds);
  }

  observeSync(entry: SyncLogEntry, conflicts: ReadonlyArray<{ table: string; type: string }>): void {
    this.syncs.inc({ type: entry.syncType, status: entry.status });
    const direction = entry.syncType === 'push' ? 'in' : 'out';
    for (const [table, n] of Object.entries(entry.recordsByTable)) this.records.inc({ table, direction }, n);
    for (const c of conflicts) this.conflicts.inc({ table: c.table, type: c.type });
    if (entry.syncType === 'push' && entry.status === 'success') this.batchSize.observe(entry.recordsSynced);
  }

  syncLogDropped(count: number): void {
    this.dropped.inc(count);
  }

  syncLogWriteFailed(): void {
    this.writeFailures.inc();
  }

  liveConnections(open: number): void {
    this.liveOpen.set(open);
  }

  livePokesSent(count: number): void {
    this.livePokes.inc(count);
  }

  liveDropped(reason: string): void {
    this.liveDrops.inc({ reason });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
