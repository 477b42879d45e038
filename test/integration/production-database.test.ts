import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/main/config';
import { exitWithin, nonJsonLines, spawnCommand } from '../support/processes';

/** PGlite is for development: production on it must be asked for by name. */
describe('the embedded database in production', function () {
  this.timeout(60_000);
  const production = {
    NODE_ENV: 'production',
    JWT_SECRET: 'p'.repeat(32),
    JWT_ISSUER: 'https://id.example.test',
    JWT_AUDIENCE: 'note-sync',
    FIELD_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 2).toString('base64')}`,
    TLS_TERMINATED_UPSTREAM: 'true',
    PGLITE_DATA_DIR: 'memory://',
  };

  it('is refused without DATABASE_URL, naming DATABASE_URL and the variable that allows it', () => {
    expect(() => loadConfig(production)).to.throw(ConfigError, /DATABASE_URL.*ALLOW_EMBEDDED_DATABASE_IN_PRODUCTION=true/);
  });

  it('is allowed by ALLOW_EMBEDDED_DATABASE_IN_PRODUCTION=true only (bad input tried: "yes")', () => {
    expect(loadConfig({ ...production, ALLOW_EMBEDDED_DATABASE_IN_PRODUCTION: 'true' }).database.kind).to.equal('pglite');
    expect(() => loadConfig({ ...production, ALLOW_EMBEDDED_DATABASE_IN_PRODUCTION: 'false' })).to.throw(ConfigError, /DATABASE_URL/);
    expect(() => loadConfig({ ...production, ALLOW_EMBEDDED_DATABASE_IN_PRODUCTION: 'yes' })).to.throw(ConfigError, /ALLOW_EMBEDDED_DATABASE_IN_PRODUCTION must be true or false/);
    expect(loadConfig({ ...production, DATABASE_URL: 'postgres://app@127.0.0.1:5432/notes' }).database.kind).to.equal('postgres');
  });

  it('outside production PGlite stays the default, with nothing to set', () => {
    const { NODE_ENV: _, ...development } = production;
    expect(loadConfig(development).database.kind).to.equal('pglite');
  });

  it('the server process refuses to start, saying why in one JSON log line', async () => {
    const s = spawnCommand(process.execPath, ['--import', 'tsx', 'src/main/server.ts'], process.cwd(), { ...production, PORT: '0' });
    const exit = await exitWithin(s, 30_000);
    expect(exit.code).to.equal(1);
    expect(nonJsonLines(s.output())).to.deep.equal([]);
    const line = JSON.parse(s.output().trim().split('\n').pop()!) as { level: number; msg: string };
    expect(line.level).to.equal(60);
    expect(line.msg).to.match(/^Configuration error: .*DATABASE_URL/);
  });
});
