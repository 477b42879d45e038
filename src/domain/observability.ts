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
