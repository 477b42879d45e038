/**
 * What operators are told (issue: observability): a user's sync is failing once this many
 * attempts in a row have failed. The alert fires when the streak reaches it, once per streak.
 */
export const FAILURE_ALERT_STREAK = 4;

export function crossesAlertThreshold(streak: number): boolean {
  return streak === FAILURE_ALERT_STREAK;
}

/** How many records a pull or push carried, per table. */
export function countRecords(changes: Record<string, { created?: unknown[]; updated?: unknown[]; deleted?: unknown[] }>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [table, ch] of Object.entries(changes)) {
    const n = (ch.created?.length ?? 0) + (ch.updated?.length ?? 0) + (ch.deleted?.length ?? 0);
    if (n > 0) out[table] = n;
  }
  return out;
}

/** A push's resolved conflicts counted by table, type and resolution, in that order. */
export function countConflicts(conflicts: ReadonlyArray<{ table: string; type: string; resolution: string }>): Array<{ table: string; type: string; resolution: string; count: number }> {
  const counts = new Map<string, { table: string; type: string; resolution: string; count: number }>();
  for (const c of conflicts) {
    const key = JSON.stringify([c.table, c.type, c.resolution]);
    const seen = counts.get(key);
    if (seen) seen.count += 1;
    else counts.set(key, { table: c.table, type: c.type, resolution: c.resolution, count: 1 });
  }
  return [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}
