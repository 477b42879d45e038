import { expect } from 'chai';
import { FetchSyncTransport } from '../../../mobile/src/adapters/fetch-transport';

/**
 * What FetchSyncTransport needs from the JavaScript engine (docs/mobile.md, "What the client needs
 * from the engine"): neither URLSearchParams nor AbortController. Each is removed from the global
 * scope for the test, as on an engine without them.
 */
async function without<T>(name: 'URLSearchParams' | 'AbortController', fn: () => Promise<T>): Promise<T> {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, name)!;
  Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
  try {
    return await fn();
  } finally {
    Object.defineProperty(globalThis, name, descriptor);
  }
}

const page = JSON.stringify({ changes: {}, timestamp: 5, has_more: false });

describe('FetchSyncTransport on a bare engine', () => {
  it('builds the pull query without URLSearchParams', async () => {
    const urls: string[] = [];
    const fetch = (async (url: string) => (urls.push(url), new Response(page, { status: 200 }))) as typeof globalThis.fetch;
    const transport = new FetchSyncTransport({ baseUrl: 'https://sync.example.com/', getToken: () => 't', deviceId: 'd1', schemaVersion: 2, fetch });
    const r = await without('URLSearchParams', () => transport.pull({ lastPulledAt: 1700, tables: ['captures', 'todos'], limit: 50 }));
    expect(r.isOk(), JSON.stringify(r)).to.equal(true);
    expect(urls).to.deep.equal(['https://sync.example.com/api/sync/pull?last_pulled_at=1700&tables=captures%2Ctodos&limit=50&schema_version=2']);
  });

  it('times out a request that never answers, without AbortController (a hung fetch, timeoutMs 50)', async () => {
    const fetch = (() => new Promise<Response>(() => undefined)) as typeof globalThis.fetch;
    const transport = new FetchSyncTransport({ baseUrl: 'https://sync.example.com', getToken: () => 't', deviceId: 'd1', timeoutMs: 50, fetch });
    const r = await without('AbortController', () => transport.pull({ lastPulledAt: null, tables: ['captures'] }));
    expect(r.isErr() && r.error.kind).to.equal('TIMEOUT');
  });

  it('times out a body that never ends, without AbortController', async () => {
    const stalled = { status: 200, ok: true, headers: new Headers(), text: () => new Promise<string>(() => undefined) } as unknown as Response;
    const transport = new FetchSyncTransport({ baseUrl: 'https://sync.example.com', getToken: () => 't', deviceId: 'd1', timeoutMs: 50, fetch: (async () => stalled) as typeof globalThis.fetch });
    const r = await without('AbortController', () => transport.pull({ lastPulledAt: null, tables: ['captures'] }));
    expect(r.isErr() && r.error).to.include({ kind: 'TIMEOUT', message: 'the server did not finish its answer in time' });
  });

  it('still cancels the request through AbortController where the engine has it', async () => {
    let signal: AbortSignal | undefined;
    const fetch = ((_url: string, init: RequestInit) => ((signal = init.signal ?? undefined), new Promise<Response>(() => undefined))) as typeof globalThis.fetch;
    const transport = new FetchSyncTransport({ baseUrl: 'https://sync.example.com', getToken: () => 't', deviceId: 'd1', timeoutMs: 50, fetch });
    const r = await transport.pull({ lastPulledAt: null, tables: ['captures'] });
    expect(r.isErr() && r.error.kind).to.equal('TIMEOUT');
    expect(signal?.aborted).to.equal(true);
  });
});
