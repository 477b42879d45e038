import type { Knex } from 'knex';

/** A pulled page as the cursor-race tests read it. */
export interface ReplayPage {
  changes: Record<string, { created: Array<{ id: string; last_modified_at: number }>; updated: Array<{ id: string; last_modified_at: number }>; deleted: string[] }>;
  timestamp: number;
  has_more: boolean;
}

/** What a puller holds: table/id -> last_modified_at of the version it pulled. */
export type Replay = Map<string, number>;

/** Applies a pulled page to a puller's replay, as a client would. */
export function applyPage(replay: Replay, page: ReplayPage): void {
  for (const [table, ch] of Object.entries(page.changes)) {
    for (const row of [...ch.created, ...ch.updated]) replay.set(`${table}/${row.id}`, row.last_modified_at);
    for (const id of ch.deleted) replay.delete(`${table}/${id}`);
  }
}

/** The server's truth for `user` in the race tables: table/id -> last_modified_at of its active rows. */
export async function serverState(db: Knex, user: string, tables: readonly string[] = ['ideas', 'todos']): Promise<Replay> {
  const out: Replay = new Map();
  for (const table of tables) {
    const rows = await db(table).where({ user_id: user, _status: 'active' }).select('id', 'last_modified_at');
    for (const r of rows) out.set(`${table}/${r.id}`, Number(r.last_modified_at));
  }
  return out;
}
