import { expect } from 'chai';
import { serverGlue } from '../support/watermelondb-glue';

/** The glue's `tables` option (docs/schema.md, rolling out a new table): pulls ask for those tables only. */
describe('the WatermelonDB glue and the tables of the app schema', () => {
  async function pulledUrls(tables?: readonly string[]): Promise<URL[]> {
    const urls: URL[] = [];
    const fetch = (async (input: string | URL | Request) => {
      urls.push(new URL(String(input)));
      return new Response(JSON.stringify({ changes: {}, timestamp: 5, has_more: false }), { status: 200 });
    }) as typeof globalThis.fetch;
    const glue = serverGlue({ baseUrl: 'http://sync.test', getToken: () => 't', deviceId: 'd1', schemaVersion: 1, fetch, ...(tables ? { tables } : {}) });
    await glue.pullChanges({ lastPulledAt: 3, schemaVersion: 1, migration: null } as never);
    return urls;
  }

  it('sends tables=<the app schema’s synced tables> when given', async () => {
    const [url] = await pulledUrls(['captures', 'todos']);
    expect(url!.searchParams.get('tables')).to.equal('captures,todos');
  });

  it('asks for every table (no tables parameter) when not given', async () => {
    const [url] = await pulledUrls();
    expect(url!.searchParams.has('tables')).to.equal(false);
  });
});
