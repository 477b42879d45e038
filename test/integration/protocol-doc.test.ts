import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';

/** The curl examples of docs/protocol.md are run as written, in order, and must answer as documented. */
const run = promisify(execFile);

interface Example {
  readonly command: string;
  readonly status: number;
  readonly code?: string;
}

function examples(): Example[] {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Examples'), doc.indexOf('## Errors'));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map(([, block]) => {
    const lines = block!.trimEnd().split('\n');
    const expectation = /^# → (\d{3})(?: (\w+))?$/.exec(lines.pop()!);
    if (!expectation) throw new Error(`an example without "# → status": ${block}`);
    return { command: lines.join('\n'), status: Number(expectation[1]), ...(expectation[2] ? { code: expectation[2] } : {}) };
  });
}

describeEachDatabase('the curl examples of docs/protocol.md', (ctx) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(ctx.database.db);
  });
  after(() => server.close());

  it('answer as documented, in order', async () => {
    const all = examples();
    expect(all.length).to.be.at.least(8);
    for (const example of all) {
      const { stdout } = await run('bash', ['-c', `${example.command} -w '\\n%{http_code}'`], { env: { ...process.env, URL: server.url, TOKEN: server.token('alice') } });
      const cut = stdout.lastIndexOf('\n');
      const status = Number(stdout.slice(cut + 1));
      const body = JSON.parse(stdout.slice(0, cut));
      expect(status, `${example.command}\n→ ${stdout}`).to.equal(example.status);
      if (example.code) expect(body.error.code).to.equal(example.code);
    }
    const rows = await ctx.database.db('todos').where({ user_id: 'alice' });
    expect(rows.map((r: any) => [r.id, r.state])).to.deep.equal([['t1', 'done']]);
    expect((await ctx.database.db('captures').where({ user_id: 'alice', id: 'c1' }).first())._status).to.equal('deleted');
    expect(await ctx.database.db('sync_conflicts').where({ user_id: 'alice' })).to.deep.equal([]);
  });
});
