import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../src/main/config';

const DAY = 24 * 60 * 60 * 1000;

/**
 * The configuration read from the environment (src/main/config.ts): every bad value fails fast
 * with a ConfigError naming its variable, and unset (or blank) variables take the defaults the
 * README documents.
 */

const SECRET = 'config-test-secret-0123456789abcdef';
const DAY_MS = 24 * 60 * 60 * 1000;
// A field key in the base, so that loading a config writes no development key file next to relative paths.
const base = { JWT_SECRET: SECRET, FIELD_ENCRYPTION_KEYS: `t:${Buffer.alloc(32, 9).toString('base64')}` };
const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

function expectConfigError(env: Record<string, string>, ...names: string[]): void {
  let thrown: unknown;
  try {
    loadConfig(env);
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `loadConfig(${JSON.stringify(env).slice(0, 200)}) should throw`).to.be.instanceOf(ConfigError);
  for (const name of names) expect((thrown as Error).message).to.include(name);
}

describe('configuration from the environment', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sync-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('refuses a bad value, naming its variable', () => {
    const cases: Array<[string, string]> = [
      ['PORT', 'abc'],
      ['PORT', '-1'],
      ['PORT', '65536'],
      ['PORT', '1.5'],
      ['PORT', '3000x'],
      ['PORT', '1e3'],
      ['SYNC_MAX_PUSH_RECORDS', '0'],
      ['SYNC_MAX_PUSH_RECORDS', 'many'],
      ['SYNC_MAX_PUSH_RECORDS', '-5'],
      ['SYNC_MAX_BODY_BYTES', '1023'],
      ['SYNC_MAX_BODY_BYTES', '10MB'],
      ['SYNC_MAX_BODY_BYTES', '2000000000'],
      ['SYNC_MAX_RECORD_BYTES', '255'],
      ['SYNC_MAX_RECORD_BYTES', 'big'],
      ['SYNC_PULL_LIMIT', '0'],
      ['SYNC_PULL_LIMIT', '1.5'],
      ['SYNC_PULL_MAX_BYTES', '1023'],
      ['SYNC_PULL_MAX_BYTES', '4MB'],
      ['SYNC_USER_QUOTA_BYTES', '-1'],
      ['SYNC_USER_QUOTA_BYTES', '1GB'],
      ['SYNC_PUSH_QUEUE_PER_USER', '1001'],
      ['SYNC_LOCK_TIMEOUT_MS', '5s'],
      ['SYNC_STATEMENT_TIMEOUT_MS', '-1'],
      ['DECRYPT_THREADS', '-1'],
      ['DECRYPT_THREADS', 'two'],
      ['DECRYPT_THREADS', '65'],
      ['SCHEMA_VERSION_MIN', '0'],
      ['SCHEMA_VERSION_MIN', 'v1'],
      ['SCHEMA_VERSION_MAX', 'two'],
      ['LOG_LEVEL', 'verbose'],
      ['LOG_LEVEL', 'none'],
      ['DATABASE_URL', 'mysql://root@127.0.0.1/db'],
      ['DATABASE_URL', 'not a url'],
      ['JWT_ALGORITHMS', 'none'],
      ['JWT_ALGORITHMS', 'HS256,PS256'],
    ];
    for (const [name, value] of cases) {
      it(`${name}=${JSON.stringify(value)}`, () => {
        expectConfigError({ ...base, [name]: value }, name);
      });
    }

    it('TRUST_PROXY_HOPS=0 or 33 with TRUST_PROXY=true, or TRUST_PROXY_HOPS without TRUST_PROXY', () => {
      expectConfigError({ ...base, TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '0' }, 'TRUST_PROXY_HOPS');
      expectConfigError({ ...base, TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '33' }, 'TRUST_PROXY_HOPS');
      expectConfigError({ ...base, TRUST_PROXY_HOPS: '2' }, 'TRUST_PROXY_HOPS');
    });

    it('TRUST_PROXY=true trusts one hop unless TRUST_PROXY_HOPS says more', () => {
      expect(loadConfig({ ...base, TRUST_PROXY: 'true' }).trustProxyHops).to.equal(1);
      expect(loadConfig({ ...base, TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '3' }).trustProxyHops).to.equal(3);
    });

    it('DB_POOL_MAX=0 with a DATABASE_URL', () => {
      expectConfigError({ ...base, DATABASE_URL: 'postgres://u@127.0.0.1:5432/db', DB_POOL_MAX: '0' }, 'DB_POOL_MAX');
    });

    it('DATABASE_READ_URL: without DATABASE_URL, not a postgres:// URL (never quoted: it may hold a password), listed twice, or the primary itself; SYNC_REPLICA_MAX_LAG_MS out of range', () => {
      const pg = { ...base, DATABASE_URL: 'postgres://u@primary:5432/db' };
      expectConfigError({ ...base, DATABASE_READ_URL: 'postgres://u@replica:5432/db' }, 'DATABASE_READ_URL', 'DATABASE_URL');
      expectConfigError({ ...pg, DATABASE_READ_URL: 'postgres://u@replica:5432/db,mysql://u:secret@replica/db' }, 'DATABASE_READ_URL', 'entry 2 of 2 is not one');
      let message = '';
      try {
        loadConfig({ ...pg, DATABASE_READ_URL: 'mysql://u:secret@replica/db' });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).to.include('DATABASE_READ_URL').and.not.include('secret');
      expectConfigError({ ...pg, DATABASE_READ_URL: 'postgres://u@replica:5432/db,' }, 'DATABASE_READ_URL', 'entry 2 of 2 is empty');
      expectConfigError({ ...pg, DATABASE_READ_URL: 'postgres://u@r:5432/db, postgres://u@r:5432/db' }, 'DATABASE_READ_URL', 'twice');
      expectConfigError({ ...pg, DATABASE_READ_URL: 'postgres://u@primary:5432/db' }, 'DATABASE_READ_URL', 'DATABASE_URL itself');
      expectConfigError({ ...pg, DATABASE_READ_URL: 'postgres://u@replica:5432/db', SYNC_REPLICA_MAX_LAG_MS: '50' }, 'SYNC_REPLICA_MAX_LAG_MS');
      expectConfigError({ ...pg, SYNC_REPLICA_MAX_LAG_MS: '5s' }, 'SYNC_REPLICA_MAX_LAG_MS');
    });

    it('SCHEMA_VERSION_MAX below SCHEMA_VERSION_MIN', () => {
      expectConfigError({ ...base, SCHEMA_VERSION_MIN: '3', SCHEMA_VERSION_MAX: '2' }, 'SCHEMA_VERSION_MAX', 'SCHEMA_VERSION_MIN');
    });

    it('JWT_SECRET of 31 bytes (at least 32 are needed)', () => {
      expectConfigError({ JWT_SECRET: 's'.repeat(31) }, 'JWT_SECRET');
    });

    it('JWT_SECRET of 31 bytes written as 15 two-byte characters and one ASCII one', () => {
      expectConfigError({ JWT_SECRET: `${'é'.repeat(15)}x` }, 'JWT_SECRET');
    });

    it('both JWT_SECRET and JWT_PUBLIC_KEY', () => {
      expectConfigError({ JWT_SECRET: SECRET, JWT_PUBLIC_KEY: rsaPem }, 'JWT_SECRET', 'JWT_PUBLIC_KEY');
    });

    it('an HS algorithm with JWT_PUBLIC_KEY (which would let the public key be used as an HMAC secret)', () => {
      expectConfigError({ JWT_PUBLIC_KEY: rsaPem, JWT_ALGORITHMS: 'RS256,HS256' }, 'JWT_ALGORITHMS');
    });

    it('an RS algorithm with JWT_SECRET', () => {
      expectConfigError({ JWT_SECRET: SECRET, JWT_ALGORITHMS: 'RS256' }, 'JWT_ALGORITHMS');
    });

    // Our own messages for a public key, word for word: an operator reads them at start-up.
    describe('JWT_PUBLIC_KEY: the message says what is wrong', () => {
      const ed25519Pem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const rsaPrivatePem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const cases: Array<[string, Record<string, string>, string]> = [
        ['both set', { JWT_SECRET: SECRET, JWT_PUBLIC_KEY: rsaPem }, 'Set JWT_SECRET (HMAC) or JWT_PUBLIC_KEY (RS/ES), not both.'],
        ['a private key', { JWT_PUBLIC_KEY: rsaPrivatePem }, 'JWT_PUBLIC_KEY holds a private key: give the server only the public key.'],
        ['a PEM block holding no key', { JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n' }, 'JWT_PUBLIC_KEY is not a PEM public key (-----BEGIN PUBLIC KEY----- …) nor the path of a file holding one.'],
        ['an Ed25519 key', { JWT_PUBLIC_KEY: ed25519Pem }, 'JWT_PUBLIC_KEY is a ed25519 key; use an RSA (RS*) or EC (ES*) key.'],
        ['an HS algorithm beside it', { JWT_PUBLIC_KEY: rsaPem, JWT_ALGORITHMS: 'RS256,HS256' }, 'JWT_ALGORITHMS may list only RS*/ES* algorithms with JWT_PUBLIC_KEY.'],
        ['ES256 for an RSA key', { JWT_PUBLIC_KEY: rsaPem, JWT_ALGORITHMS: 'ES256' }, 'JWT_ALGORITHMS must be RS* algorithms for this RSA JWT_PUBLIC_KEY.'],
        ['an RS algorithm with JWT_SECRET', { JWT_SECRET: SECRET, JWT_ALGORITHMS: 'RS256' }, 'JWT_ALGORITHMS may list only HS* algorithms with JWT_SECRET; set JWT_PUBLIC_KEY for RS*/ES*.'],
      ];
      for (const [what, env, message] of cases) {
        it(what, () => {
          expect(() => loadConfig(env)).to.throw(ConfigError).with.property('message', message);
        });
      }
    });

    it('JWT_PUBLIC_KEY pins one algorithm of its key type unless JWT_ALGORITHMS says otherwise', () => {
      const ecPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const algorithms = (env: Record<string, string>) => loadConfig({ FIELD_ENCRYPTION_KEYS: base.FIELD_ENCRYPTION_KEYS, ...env }).jwt.algorithms;
      expect(algorithms({ JWT_PUBLIC_KEY: rsaPem })).to.deep.equal(['RS256']);
      expect(algorithms({ JWT_PUBLIC_KEY: ecPem })).to.deep.equal(['ES256']);
      expect(algorithms({ JWT_PUBLIC_KEY: rsaPem, JWT_ALGORITHMS: 'rs384, RS512' })).to.deep.equal(['RS384', 'RS512']);
      expect(algorithms({ JWT_SECRET: SECRET })).to.deep.equal(['HS256']);
    });

    it('JWT_PUBLIC_KEY naming a file that does not exist', () => {
      expectConfigError({ JWT_PUBLIC_KEY: join(dir, 'missing.pem') }, 'JWT_PUBLIC_KEY');
    });

    it('JWT_PUBLIC_KEY that is a PEM block holding no key', () => {
      expectConfigError({ JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n' }, 'JWT_PUBLIC_KEY');
    });

    it('NODE_ENV=production without JWT_SECRET or JWT_PUBLIC_KEY', () => {
      expectConfigError({ NODE_ENV: 'production', PGLITE_DATA_DIR: join(dir, 'pglite') }, 'JWT_SECRET', 'JWT_PUBLIC_KEY');
    });

    // Issue 20, item 7: a key shared by an identity provider across apps accepts another app's token.
    it('NODE_ENV=production without JWT_ISSUER or JWT_AUDIENCE (unless JWT_ALLOW_ANY_ISSUER=true)', () => {
      const prod = { ...base, NODE_ENV: 'production', TLS_TERMINATED_UPSTREAM: 'true', DATABASE_URL: 'postgres://app@127.0.0.1:5432/notes' };
      expectConfigError({ ...prod, JWT_AUDIENCE: 'note-sync' }, 'JWT_ISSUER', 'JWT_ALLOW_ANY_ISSUER');
      expectConfigError({ ...prod, JWT_ISSUER: 'https://id.example' }, 'JWT_AUDIENCE', 'JWT_ALLOW_ANY_ISSUER');
      expectConfigError(prod, 'JWT_ISSUER', 'JWT_AUDIENCE');
      expectConfigError({ ...prod, JWT_ALLOW_ANY_ISSUER: 'yes' }, 'JWT_ALLOW_ANY_ISSUER');
      expect(loadConfig({ ...prod, JWT_ISSUER: 'https://id.example', JWT_AUDIENCE: 'note-sync' }).jwt.issuer).to.equal('https://id.example');
      expect(loadConfig({ ...prod, JWT_ALLOW_ANY_ISSUER: 'true' }).production).to.equal(true);
    });

    it('METRICS_PORT that is no port or equals PORT, and a METRICS_TOKEN shorter than 16 bytes', () => {
      expectConfigError({ ...base, METRICS_PORT: 'abc' }, 'METRICS_PORT');
      expectConfigError({ ...base, METRICS_PORT: '70000' }, 'METRICS_PORT');
      expectConfigError({ ...base, PORT: '4400', METRICS_PORT: '4400' }, 'METRICS_PORT', 'PORT');
      expectConfigError({ ...base, METRICS_TOKEN: 'short' }, 'METRICS_TOKEN');
    });

    // Issue 20, item 2: each replica or redeploy would make its own key under the id "dev".
    it('DATABASE_URL without FIELD_ENCRYPTION_KEYS, unless ALLOW_GENERATED_FIELD_KEY=true', () => {
      const pg = { JWT_SECRET: SECRET, DATABASE_URL: 'postgres://u@127.0.0.1:5432/db', PGLITE_DATA_DIR: join(dir, 'pglite') };
      expectConfigError(pg, 'FIELD_ENCRYPTION_KEYS', 'ALLOW_GENERATED_FIELD_KEY');
      expectConfigError({ ...pg, NODE_ENV: 'development' }, 'FIELD_ENCRYPTION_KEYS');
      expectConfigError({ ...pg, ALLOW_GENERATED_FIELD_KEY: 'yes' }, 'ALLOW_GENERATED_FIELD_KEY');
      const allowed = loadConfig({ ...pg, ALLOW_GENERATED_FIELD_KEY: 'true' });
      expect(allowed.fieldKeys.devKeyFile).to.equal(join(dir, 'dev-field-key'));
      expect(loadConfig({ ...pg, FIELD_ENCRYPTION_KEYS: base.FIELD_ENCRYPTION_KEYS }).fieldKeys.devKeyFile).to.equal(undefined);
    });

    it('JWT_ADMIN_CLAIM that is not a claim name, or a blank JWT_ADMIN_VALUE', () => {
      expectConfigError({ ...base, JWT_ADMIN_CLAIM: 'roles[0]' }, 'JWT_ADMIN_CLAIM');
      expectConfigError({ ...base, JWT_ADMIN_CLAIM: 'a..b' }, 'JWT_ADMIN_CLAIM');
      expectConfigError({ ...base, JWT_ADMIN_CLAIM: 'sub' }, 'JWT_ADMIN_CLAIM');
      expectConfigError({ ...base, JWT_ADMIN_VALUE: '   ' }, 'JWT_ADMIN_VALUE');
    });

    it('NODE_ENV=production with a blank JWT_SECRET', () => {
      expectConfigError({ NODE_ENV: 'production', JWT_SECRET: '', PGLITE_DATA_DIR: join(dir, 'pglite') }, 'JWT_SECRET');
    });
  });

  describe('defaults and accepted values', () => {
    it('unset variables take the documented defaults', () => {
      const config = loadConfig({ JWT_SECRET: SECRET });
      expect(config.fieldKeys.ring[0]!.key).to.have.length(32);
      expect(config.fieldKeys.devKeyFile).to.match(/dev-field-key$/);
      expect(config).to.deep.equal({
        production: false,
        host: '127.0.0.1',
        port: 3000,
        database: { kind: 'pglite', dataDir: resolve('./.data/pglite') },
        readReplicas: { urls: [], maxLagMs: 5000 },
        jwt: { key: SECRET, algorithms: ['HS256'], issuer: undefined, audience: undefined, clockToleranceSeconds: 5, admin: { claim: 'role', value: 'admin' } },
        maxBodyBytes: 10 * 1024 * 1024,
        compressAboveBytes: 1024,
        syncLogQueueMax: 10000,
        rateLimits: { perIpPerMinute: 1200, perUserPerMinute: 600 },
        tls: null,
        tlsTerminatedUpstream: false,
        trustProxy: false,
        trustProxyHops: 0,
        alertMaxPerUserPerHour: 4,
        fieldKeys: { ring: [{ id: 'dev', key: config.fieldKeys.ring[0]!.key }], devKeyFile: config.fieldKeys.devKeyFile },
        decryptThreads: 0,
        // The project's own build of the dashboard, wherever the server is started from.
        adminUiDir: fileURLToPath(new URL('../../dist/admin', import.meta.url)),
        metrics: { port: null, host: '127.0.0.1', token: null },
        transactionTimeouts: { lockMs: 5000, statementMs: 30_000 },
        sync: {
          maxPushRecords: 1000,
          maxRecordBytes: 1024 * 1024,
          pullLimit: 10_000,
          pullMaxBytes: 4 * 1024 * 1024,
          userQuotaBytes: 1024 * 1024 * 1024,
          pushQueuePerUser: 4,
          schemaVersions: { min: 1, max: 1 },
          pushReceiptTtlMs: 24 * 60 * 60 * 1000,
        },
        retention: {
          tombstonesMs: 90 * DAY,
          syncLogsMs: 30 * DAY,
          conflictsMs: 90 * DAY,
          statsMs: 400 * DAY,
          receiptsMs: DAY,
          batchSize: 1000,
          intervalMs: 60 * 60 * 1000,
        },
        logLevel: 'info',
        live: { heartbeatMs: 20_000, maxPerUser: 10, maxPerProcess: 20_000, slowClientMs: 10_000, retryMs: 3_000 },
      });
    });

    it('retention: days per kind (0 keeps forever), the batch size, and the interval (0: never in this process)', () => {
      const r = loadConfig({ ...base, SYNC_TOMBSTONE_RETENTION_DAYS: '0', SYNC_LOG_RETENTION_DAYS: '7', SYNC_CONFLICT_RETENTION_DAYS: '365', SYNC_STATS_RETENTION_DAYS: '0', RETENTION_BATCH_SIZE: '50', RETENTION_INTERVAL_MINUTES: '0' }).retention;
      expect(r).to.deep.equal({ tombstonesMs: null, syncLogsMs: 7 * DAY, conflictsMs: 365 * DAY, statsMs: null, receiptsMs: DAY, batchSize: 50, intervalMs: 0 });
      for (const [name, bad] of [['SYNC_TOMBSTONE_RETENTION_DAYS', '-1'], ['SYNC_LOG_RETENTION_DAYS', 'a week'], ['SYNC_STATS_RETENTION_DAYS', '-3'], ['RETENTION_BATCH_SIZE', '0'], ['RETENTION_INTERVAL_MINUTES', '1.5']] as const) {
        expectConfigError({ ...base, [name]: bad }, name);
      }
    });

    it('ADMIN_UI_DIR: where the dashboard is served from, resolved from the working directory', () => {
      expect(loadConfig({ ...base, ADMIN_UI_DIR: 'build/admin' }).adminUiDir).to.equal(resolve('build/admin'));
      expect(loadConfig({ ...base, ADMIN_UI_DIR: '/srv/admin' }).adminUiDir).to.equal('/srv/admin');
    });

    it('reads the live channel variables, and refuses one out of range', () => {
      const live = loadConfig({ JWT_SECRET: SECRET, LIVE_HEARTBEAT_SECONDS: '15', LIVE_MAX_CONNECTIONS_PER_USER: '0', LIVE_MAX_CONNECTIONS: '500', LIVE_SLOW_CLIENT_MS: '2500' }).live;
      expect(live).to.deep.equal({ heartbeatMs: 15_000, maxPerUser: 0, maxPerProcess: 500, slowClientMs: 2_500, retryMs: 3_000 });
      // Bad input: a heartbeat of 0 s (proxies would cut the stream) and a negative limit.
      expect(() => loadConfig({ JWT_SECRET: SECRET, LIVE_HEARTBEAT_SECONDS: '0' })).to.throw(/LIVE_HEARTBEAT_SECONDS/);
      expect(() => loadConfig({ JWT_SECRET: SECRET, LIVE_MAX_CONNECTIONS: '-1' })).to.throw(/LIVE_MAX_CONNECTIONS/);
    });

    it('blank variables count as unset', () => {
      const blank = Object.fromEntries(
        ['PORT', 'HOST', 'DATABASE_URL', 'SYNC_MAX_PUSH_RECORDS', 'SYNC_MAX_BODY_BYTES', 'SYNC_MAX_RECORD_BYTES', 'SYNC_PULL_LIMIT', 'SCHEMA_VERSION_MIN', 'SCHEMA_VERSION_MAX', 'LOG_LEVEL', 'JWT_ISSUER', 'JWT_AUDIENCE', 'JWT_ALGORITHMS', 'DECRYPT_THREADS', 'ADMIN_UI_DIR', 'DATABASE_READ_URL', 'SYNC_REPLICA_MAX_LAG_MS'].map((k) => [k, '']),
      );
      expect(loadConfig({ ...base, ...blank })).to.deep.equal(loadConfig({ ...base }));
    });

    it('reads every number it is given, at the edges of the allowed ranges', () => {
      const config = loadConfig({
        ...base,
        PORT: '0',
        SYNC_MAX_PUSH_RECORDS: '1',
        SYNC_MAX_BODY_BYTES: '1024',
        SYNC_MAX_RECORD_BYTES: '256',
        SYNC_PULL_LIMIT: '1',
        SCHEMA_VERSION_MIN: '2',
        SCHEMA_VERSION_MAX: '2',
        LOG_LEVEL: 'silent',
        HOST: '0.0.0.0',
        DECRYPT_THREADS: '64',
      });
      expect(config.decryptThreads).to.equal(64);
      expect(config.port).to.equal(0);
      expect(config.host).to.equal('0.0.0.0');
      expect(config.maxBodyBytes).to.equal(1024);
      expect(config.sync).to.include({ maxPushRecords: 1, maxRecordBytes: 256, pullLimit: 1 });
      expect(config.sync.schemaVersions).to.deep.equal({ min: 2, max: 2 });
      expect(config.logLevel).to.equal('silent');
      expect(loadConfig({ ...base, PORT: '65535' }).port).to.equal(65535);
      expect(loadConfig({ ...base, PORT: ' 8080 ' }).port).to.equal(8080);
    });

    it('SCHEMA_VERSION_MIN alone raises the maximum with it', () => {
      expect(loadConfig({ ...base, SCHEMA_VERSION_MIN: '3' }).sync.schemaVersions).to.deep.equal({ min: 3, max: 3 });
    });

    it('a DATABASE_URL selects PostgreSQL, with DB_POOL_MAX', () => {
      expect(loadConfig({ ...base, DATABASE_URL: 'postgresql://u@db:5432/x', DB_POOL_MAX: '5' }).database).to.deep.equal({ kind: 'postgres', url: 'postgresql://u@db:5432/x', poolMax: 5, queryTimeoutMs: 20_000 });
      expect(loadConfig({ ...base, DATABASE_URL: 'postgresql://u@db:5432/x', DB_QUERY_TIMEOUT_MS: '1500' }).database).to.include({ queryTimeoutMs: 1500 });
      expectConfigError({ ...base, DATABASE_URL: 'postgresql://u@db:5432/x', DB_QUERY_TIMEOUT_MS: '50' }, 'DB_QUERY_TIMEOUT_MS');
      expect(loadConfig({ ...base, DATABASE_URL: 'postgres://u@db/x' }).database).to.deep.equal({ kind: 'postgres', url: 'postgres://u@db/x', poolMax: 10, queryTimeoutMs: 20_000 });
    });

    it('DATABASE_READ_URL: a comma list of hot standbys (none by default), staleness bound 5 s unless SYNC_REPLICA_MAX_LAG_MS says otherwise', () => {
      expect(loadConfig(base).readReplicas).to.deep.equal({ urls: [], maxLagMs: 5000 });
      const pg = { ...base, DATABASE_URL: 'postgres://u@primary:5432/db' };
      expect(loadConfig({ ...pg, DATABASE_READ_URL: ' postgres://u@r1:5432/db , postgresql://u@r2/db', SYNC_REPLICA_MAX_LAG_MS: '750' }).readReplicas).to.deep.equal({
        urls: ['postgres://u@r1:5432/db', 'postgresql://u@r2/db'],
        maxLagMs: 750,
      });
    });

    it('PGLITE_DATA_DIR is resolved, and memory:// kept as is', () => {
      expect(loadConfig({ ...base, PGLITE_DATA_DIR: 'memory://' }).database).to.deep.equal({ kind: 'pglite', dataDir: 'memory://' });
      expect(loadConfig({ ...base, PGLITE_DATA_DIR: 'rel/dir' }).database).to.deep.equal({ kind: 'pglite', dataDir: resolve('rel/dir') });
    });

    it('a JWT_SECRET of exactly 32 bytes is accepted', () => {
      expect(loadConfig({ JWT_SECRET: 's'.repeat(32) }).jwt.key).to.equal('s'.repeat(32));
      expect(loadConfig({ JWT_SECRET: 'é'.repeat(16) }).jwt.algorithms).to.deep.equal(['HS256']);
    });

    it('JWT_ALGORITHMS is read case-insensitively, with spaces', () => {
      expect(loadConfig({ ...base, JWT_ALGORITHMS: 'hs256, HS512' }).jwt.algorithms).to.deep.equal(['HS256', 'HS512']);
    });

    it('JWT_ISSUER and JWT_AUDIENCE are trimmed', () => {
      const { jwt } = loadConfig({ ...base, JWT_ISSUER: ' https://id.example.com ', JWT_AUDIENCE: ' note-sync ' });
      expect(jwt).to.include({ issuer: 'https://id.example.com', audience: 'note-sync' });
    });

    it('JWT_PUBLIC_KEY as PEM text, also with escaped newlines, pins the algorithm of its key type', () => {
      const escaped = rsaPem.replace(/\n/g, '\\n');
      for (const value of [rsaPem, escaped]) {
        const { jwt } = loadConfig({ JWT_PUBLIC_KEY: value });
        expect(jwt.key).to.equal(rsaPem);
        expect(jwt.algorithms).to.deep.equal(['RS256']);
      }
      expect(loadConfig({ JWT_PUBLIC_KEY: rsaPem, JWT_ALGORITHMS: 'RS256,RS512' }).jwt.algorithms).to.deep.equal(['RS256', 'RS512']);
      expect(() => loadConfig({ JWT_PUBLIC_KEY: rsaPem, JWT_ALGORITHMS: 'ES256' })).to.throw(ConfigError, /JWT_ALGORITHMS/);
    });

    it('JWT_PUBLIC_KEY as the path of a PEM file', () => {
      const file = join(dir, 'key.pem');
      writeFileSync(file, rsaPem);
      expect(loadConfig({ JWT_PUBLIC_KEY: file }).jwt.key).to.equal(rsaPem);
    });

    it('NODE_ENV=production with a JWT_SECRET is production (with TLS, here terminated upstream)', () => {
      const keys = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
      const ours = { JWT_ISSUER: 'https://id.example', JWT_AUDIENCE: 'note-sync' };
      expect(loadConfig({ ...base, ...ours, NODE_ENV: 'production', TLS_TERMINATED_UPSTREAM: 'true', FIELD_ENCRYPTION_KEYS: keys, DATABASE_URL: 'postgres://app@127.0.0.1:5432/notes' }).production).to.equal(true);
      expect(() => loadConfig({ ...base, ...ours, NODE_ENV: 'production', FIELD_ENCRYPTION_KEYS: keys })).to.throw(ConfigError, /TLS_CERT_FILE/);
      expect(() => loadConfig({ JWT_SECRET: SECRET, ...ours, NODE_ENV: 'production', TLS_TERMINATED_UPSTREAM: 'true' })).to.throw(ConfigError, /FIELD_ENCRYPTION_KEYS/);
      expect(loadConfig({ ...base, NODE_ENV: 'development' }).production).to.equal(false);
    });

    it('outside production without a key, a development secret is generated next to the PGlite data once, private, and reused', () => {
      const env = { PGLITE_DATA_DIR: join(dir, 'pglite') };
      const first = loadConfig(env);
      const file = join(dir, 'dev-jwt-secret');
      expect(first.jwt.devSecretFile).to.equal(file);
      expect(first.jwt.key).to.match(/^[0-9a-f]{64}$/);
      expect(readFileSync(file, 'utf8').trim()).to.equal(first.jwt.key);
      expect(statSync(file).mode & 0o777).to.equal(0o600);
      expect(loadConfig(env).jwt.key).to.equal(first.jwt.key);
    });
  });
});
