import type { RuntimeFigures, SyncSeries, SyncStats } from '../../../application/ports';

export type { RuntimeFigures, SyncSeries, SyncStats };

/** The admin API's refusal, with the server's error code and words. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'note-sync.admin-token';

/**
 * The token lives in sessionStorage (gone when the tab closes, never shared with other tabs) and
 * travels only in the Authorization header, never in a URL.
 */
export const tokenStore = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string): void => sessionStorage.setItem(TOKEN_KEY, token),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

async function getJson<T>(token: string, path: string, params: Record<string, number> = {}): Promise<T> {
  const query = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
  const res = await fetch(`/api${path}${query.size ? `?${query}` : ''}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, cache: 'no-store' });
  const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? 'HTTP_ERROR', body?.error?.message ?? `The server answered ${res.status}.`);
  return body as T;
}

export const adminApi = {
  runtime: (token: string) => getJson<RuntimeFigures>(token, '/admin/runtime'),
  stats: (token: string, since: number, until: number) => getJson<SyncStats>(token, '/admin/sync/stats', { since, until }),
  series: (token: string, from: number, to: number, bucket: number) => getJson<SyncSeries>(token, '/admin/sync/series', { from, to, bucket }),
};
