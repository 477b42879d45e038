import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_ADMIN_CLAIM, type AdminClaim, type JwtAlgorithm } from '../adapters/crypto/jwt-token-verifier';
import type { DatabaseTarget } from '../adapters/postgres/connection';
import type { SyncSettings } from '../application/settings';
import { DEFAULT_SYNC_SETTINGS, type RetentionSettings } from '../application/settings';
import { packageRoot } from './package-root';

export class ConfigError extends Error {}

export interface JwtConfig {
  /** The HMAC secret that signs (the first of JWT_SECRET's list), or the PEM public key. */
  readonly key: string;
  /** The rest of JWT_SECRET's list: still accepted, never used to sign. */
  readonly olderKeys?: readonly string[];
  readonly algorithms: readonly JwtAlgorithm[];
  readonly issuer?: string;
  readonly audience?: string;
  /** Leeway for exp and nbf, in seconds. */
  readonly clockToleranceSeconds: number;
  /** When set, tokens must carry this `kid`. */
  readonly keyId?: string;
  /** Set when no key was configured and a development secret was generated or reused. */
  readonly devSecretFile?: string;
  /** Who is an admin (JWT_ADMIN_CLAIM, JWT_ADMIN_VALUE; default `role` = `admin`). */
  readonly admin: AdminClaim;
}

export interface AppConfig {
  readonly production: boolean;
  readonly host: string;
  readonly port: number;
  readonly database: DatabaseTarget;
  /**
   * Hot standbys of `database` that serve pulls (DATABASE_READ_URL), and the staleness beyond which
   * one is skipped for the primary (SYNC_REPLICA_MAX_LAG_MS). Empty: every query on the primary.
   */
  readonly readReplicas: { readonly urls: readonly string[]; readonly maxLagMs: number };
  readonly jwt: JwtConfig;
  readonly maxBodyBytes: number;
  readonly compressAboveBytes: number;
  readonly sync: SyncSettings;
  readonly retention: RetentionSettings & {
    /** How often this process runs the retention job; 0: never (another process does). */
    readonly intervalMs: number;
  };
  readonly logLevel: string;
  readonly rateLimits: { readonly perIpPerMinute: number; readonly perUserPerMinute: number };
  /** The live channel (GET /api/sync/live). */
  readonly live: { readonly heartbeatMs: number; readonly maxPerUser: number; readonly maxPerProcess: number; readonly slowClientMs: number; readonly retryMs: number };
  /** HTTPS served by this process (both files), or null. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
  /** A proxy in front terminates TLS (so production may run plain HTTP here). */
  readonly tlsTerminatedUpstream: boolean;
  /** Take the client's IP from X-Forwarded-For (only behind a proxy that sets it). */
  readonly trustProxy: boolean;
  /**
   * X-Forwarded-For entries to trust, counted from the right (each proxy in front appends one):
   * the client's IP is the leftmost of those. 0 when TRUST_PROXY is off.
   */
  readonly trustProxyHops: number;
  /**
   * Threads that decrypt large pull pages besides the request's own (0, the default: none). Each
   * makes a large pull faster and costs 15–50 MB (docs/performance.md §12).
   */
  readonly decryptThreads: number;
  /** The field-encryption key ring (the first encrypts), and where a generated dev key lives. */
  readonly fieldKeys: { readonly ring: ReadonlyArray<{ readonly id: string; readonly key: Buffer }>; readonly devKeyFile?: string };
  /** Most sync_logs entries held in memory before new ones are dropped (and counted). */
  readonly syncLogQueueMax: number;
  readonly alertWebhook?: { readonly url: string; readonly timeoutMs: number; readonly retries: number };
  /** The dashboard's built files (`npm run build:admin`), served at /admin. */
  readonly adminUiDir: string;
  /** Alerts one user may raise per hour (per process); more are held back. */
  readonly alertMaxPerUserPerHour: number;
  /**
   * Where GET /metrics is served: its own listener (`port`, on `host`, 127.0.0.1 by default), and/or
   * behind a bearer `token` (on the public port only when no listener of its own is set). Neither: nowhere.
   */
  readonly metrics: { readonly port: number | null; readonly host: string; readonly token: string | null };
  /** lock_timeout and statement_timeout of a push transaction, in ms (0: none). */
  readonly transactionTimeouts: { readonly lockMs: number; readonly statementMs: number };
}

type Env = Readonly<Record<string, string | undefined>>;

const HMAC: readonly JwtAlgorithm[] = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC: readonly JwtAlgorithm[] = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function intVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number from ${min} to ${max}; got "${raw}".`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be from ${min} to ${max}; got ${n}.`);
  return n;
}

/** DATABASE_URL (with DB_POOL_MAX), else PGlite in PGLITE_DATA_DIR; knexfile.ts reads only this. */
export function databaseTarget(env: Env = process.env): DatabaseTarget {
  const url = env['DATABASE_URL']?.trim();
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError('DATABASE_URL must be a postgres:// URL, e.g. postgres://user@127.0.0.1:5432/db. Unset it to use the embedded database.');
    return { kind: 'postgres', url, poolMax: intVar(env, 'DB_POOL_MAX', 10, 1, 1000), queryTimeoutMs: intVar(env, 'DB_QUERY_TIMEOUT_MS', 20_000, 100, 3_600_000) };
  }
  // PGlite is one connection in the server's own process, sized for development and tests.
  if (env['NODE_ENV'] === 'production' && !boolVar(env, 'ALLOW_EMBEDDED_DATABASE_IN_PRODUCTION')) {
    throw new ConfigError('NODE_ENV=production needs DATABASE_URL (a PostgreSQL server): the embedded database is for development. Set ALLOW_EMBEDDED_DATABASE_IN_PRODUCTION=true to run on it anyway.');
  }
  const dir = env['PGLITE_DATA_DIR']?.trim() || './.data/pglite';
  return { kind: 'pglite', dataDir: dir.startsWith('memory://') ? dir : resolve(dir) };
}

/**
 * DATABASE_READ_URL: a comma list of postgres:// URLs of hot standbys of DATABASE_URL. Pulls go
 * there; everything else stays on the primary (docs/scaling.md, "Read replicas").
 */
export function readReplicas(env: Env, database: DatabaseTarget): AppConfig['readReplicas'] {
  const raw = env['DATABASE_READ_URL']?.trim() ?? '';
  const maxLagMs = intVar(env, 'SYNC_REPLICA_MAX_LAG_MS', 5000, 100, 3_600_000);
  if (raw === '') return { urls: [], maxLagMs };
  if (database.kind !== 'postgres') throw new ConfigError('DATABASE_READ_URL needs DATABASE_URL: read replicas are hot standbys of a PostgreSQL primary, and the embedded database has none.');
  const urls = raw.split(',').map((u) => u.trim());
  // The entry is named by its place, not quoted: a URL may hold a password.
  urls.forEach((url, i) => {
    if (!/^postgres(ql)?:\/\/\S+$/.test(url)) {
      throw new ConfigError(`DATABASE_READ_URL must be a comma list of postgres:// URLs of hot standbys, e.g. postgres://user@replica1:5432/db,postgres://user@replica2:5432/db; entry ${i + 1} of ${urls.length} ${url ? 'is not one' : 'is empty'}.`);
    }
  });
  if (new Set(urls).size !== urls.length) throw new ConfigError('DATABASE_READ_URL lists a URL twice.');
  if (urls.includes(database.url)) throw new ConfigError('DATABASE_READ_URL lists DATABASE_URL itself: name the hot standbys only (pulls fall back to the primary by themselves).');
  return { urls, maxLagMs };
}

/** Where a generated development JWT secret is kept, so `npm run token` and restarts agree. */
export function devSecretPath(env: Env): string {
  const dir = env['PGLITE_DATA_DIR']?.trim();
  const base = dir && !dir.startsWith('memory://') ? dirname(resolve(dir)) : resolve('./.data');
  return join(base, 'dev-jwt-secret');
}

function jwtConfig(env: Env, production: boolean): JwtConfig {
  const secret = env['JWT_SECRET'];
  const publicKey = env['JWT_PUBLIC_KEY'];
  const issuer = env['JWT_ISSUER']?.trim() || undefined;
  const audience = env['JWT_AUDIENCE']?.trim() || undefined;
  const common = {
    clockToleranceSeconds: intVar(env, 'JWT_CLOCK_TOLERANCE_SECONDS', 5, 0, 300),
    admin: adminClaim(env),
    ...(env['JWT_KEY_ID']?.trim() ? { keyId: env['JWT_KEY_ID'].trim() } : {}),
  };
  if (secret && publicKey) throw new ConfigError('Set JWT_SECRET (HMAC) or JWT_PUBLIC_KEY (RS/ES), not both.');

  const algorithms = (env['JWT_ALGORITHMS'] ?? '')
    .split(',')
    .map((a) => a.trim().toUpperCase())
    .filter(Boolean) as JwtAlgorithm[];
  for (const a of algorithms) {
    if (![...HMAC, ...ASYMMETRIC].includes(a)) throw new ConfigError(`JWT_ALGORITHMS has "${a}"; allowed: ${[...HMAC, ...ASYMMETRIC].join(', ')}.`);
  }

  if (publicKey) {
    const pem = publicKey.includes('-----BEGIN') ? publicKey.replace(/\\n/g, '\n') : readKeyFile(publicKey);
    if (/PRIVATE KEY-----/.test(pem)) throw new ConfigError('JWT_PUBLIC_KEY holds a private key: give the server only the public key.');
    let keyType: string | undefined;
    try {
      keyType = createPublicKey(pem).asymmetricKeyType;
    } catch {
      throw new ConfigError('JWT_PUBLIC_KEY is not a PEM public key (-----BEGIN PUBLIC KEY----- …) nor the path of a file holding one.');
    }
    const family = keyType === 'rsa' ? 'RS' : keyType === 'ec' ? 'ES' : undefined;
    if (!family) throw new ConfigError(`JWT_PUBLIC_KEY is a ${keyType} key; use an RSA (RS*) or EC (ES*) key.`);
    const algs = algorithms.length ? algorithms : ([`${family}256`] as JwtAlgorithm[]);
    // Pinning only asymmetric algorithms stops an HS256 token "signed" with the public key.
    if (algs.some((a) => HMAC.includes(a))) throw new ConfigError('JWT_ALGORITHMS may list only RS*/ES* algorithms with JWT_PUBLIC_KEY.');
    if (algs.some((a) => !a.startsWith(family))) throw new ConfigError(`JWT_ALGORITHMS must be ${family}* algorithms for this ${keyType?.toUpperCase()} JWT_PUBLIC_KEY.`);
    return { key: pem, algorithms: algs, issuer, audience, ...common };
  }
  const algs = algorithms.length ? algorithms : (['HS256'] as JwtAlgorithm[]);
  if (algs.some((a) => !HMAC.includes(a))) throw new ConfigError('JWT_ALGORITHMS may list only HS* algorithms with JWT_SECRET; set JWT_PUBLIC_KEY for RS*/ES*.');
  if (secret) {
    // A comma list rotates secrets without logging anyone out: the first signs (npm run token), all verify.
    const [first, ...older] = secret.split(',').map((k) => k.trim());
    if ([first, ...older].some((k) => Buffer.byteLength(k ?? '') < 32)) throw new ConfigError('JWT_SECRET must be at least 32 bytes long (each secret of a comma-separated list).');
    return { key: first!, ...(older.length ? { olderKeys: older } : {}), algorithms: algs, issuer, audience, ...common };
  }
  if (production) throw new ConfigError('Set JWT_SECRET or JWT_PUBLIC_KEY: production never runs with a generated secret.');
  const file = devSecretPath(env);
  return { key: loadOrCreateDevSecret(file), algorithms: algs, issuer, audience, ...common, devSecretFile: file };
}

const CLAIM_NAME = /^[A-Za-z_][\w:-]*(\.[A-Za-z_][\w:-]*)*$/;
/** Claims a token has for other purposes: naming one of them as the admin claim is a slip. */
const REGISTERED_CLAIMS = ['sub', 'iss', 'aud', 'exp', 'nbf', 'iat', 'jti'];

function adminClaim(env: Env): AdminClaim {
  const claim = env['JWT_ADMIN_CLAIM']?.trim() || DEFAULT_ADMIN_CLAIM.claim;
  const raw = env['JWT_ADMIN_VALUE'];
  if (raw !== undefined && raw !== '' && raw.trim() === '') throw new ConfigError('JWT_ADMIN_VALUE must not be blank.');
  if (!CLAIM_NAME.test(claim) || REGISTERED_CLAIMS.includes(claim)) {
    throw new ConfigError(`JWT_ADMIN_CLAIM must be a claim name or a dotted path (e.g. roles, groups, realm_access.roles), not a registered claim; got "${claim}".`);
  }
  return { claim, value: raw?.trim() || DEFAULT_ADMIN_CLAIM.value };
}

/**
 * In production a token must be for this service: an identity provider that signs for several
 * apps with one key would otherwise get another app's tokens accepted here.
 */
function requireIssuerAndAudience(env: Env, jwt: JwtConfig): void {
  if (boolVar(env, 'JWT_ALLOW_ANY_ISSUER')) return;
  const missing = [...(jwt.issuer ? [] : ['JWT_ISSUER']), ...(jwt.audience ? [] : ['JWT_AUDIENCE'])];
  if (missing.length) {
    throw new ConfigError(
      `In production set ${missing.join(' and ')} so that only tokens issued for this service are accepted (a key shared across apps would accept another app's tokens), or set JWT_ALLOW_ANY_ISSUER=true if this key signs for this service alone.`,
    );
  }
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`JWT_PUBLIC_KEY must be a PEM public key or the path of a file holding one; cannot read "${path}".`);
  }
}

export function loadOrCreateDevSecret(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('hex');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Days to keep each kind of old data (0: forever), and how the job runs (docs/operations.md). */
function retentionConfig(env: Env): AppConfig['retention'] {
  const days = (name: string, fallback: number) => {
    const n = intVar(env, name, fallback, 0, 36_500);
    return n === 0 ? null : n * DAY_MS;
  };
  return {
    tombstonesMs: days('SYNC_TOMBSTONE_RETENTION_DAYS', 90),
    syncLogsMs: days('SYNC_LOG_RETENTION_DAYS', 30),
    conflictsMs: days('SYNC_CONFLICT_RETENTION_DAYS', 90),
    statsMs: days('SYNC_STATS_RETENTION_DAYS', 400),
    receiptsMs: DEFAULT_SYNC_SETTINGS.pushReceiptTtlMs,
    batchSize: intVar(env, 'RETENTION_BATCH_SIZE', 1000, 1, 100_000),
    intervalMs: intVar(env, 'RETENTION_INTERVAL_MINUTES', 60, 0, 7 * 24 * 60) * 60_000,
  };
}

/** Reads the configuration from the environment; a bad value fails fast, naming its variable. */
export function loadConfig(env: Env = process.env): AppConfig {
  const production = env['NODE_ENV'] === 'production';
  const min = intVar(env, 'SCHEMA_VERSION_MIN', DEFAULT_SYNC_SETTINGS.schemaVersions.min, 1, 1_000_000);
  const max = intVar(env, 'SCHEMA_VERSION_MAX', Math.max(min, DEFAULT_SYNC_SETTINGS.schemaVersions.max), 1, 1_000_000);
  if (max < min) throw new ConfigError(`SCHEMA_VERSION_MAX (${max}) must not be below SCHEMA_VERSION_MIN (${min}).`);
  const logLevel = env['LOG_LEVEL']?.trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; got "${logLevel}".`);
  const host = env['HOST']?.trim() || '127.0.0.1';
  let config: AppConfig = {
    production,
    host,
    port: intVar(env, 'PORT', 3000, 0, 65535),
    jwt: jwtConfig(env, production),
    maxBodyBytes: intVar(env, 'SYNC_MAX_BODY_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    compressAboveBytes: intVar(env, 'HTTP_COMPRESS_ABOVE_BYTES', 1024, 0, 1024 * 1024 * 1024),
    sync: {
      ...DEFAULT_SYNC_SETTINGS,
      maxPushRecords: intVar(env, 'SYNC_MAX_PUSH_RECORDS', DEFAULT_SYNC_SETTINGS.maxPushRecords, 1, 1_000_000),
      maxRecordBytes: intVar(env, 'SYNC_MAX_RECORD_BYTES', DEFAULT_SYNC_SETTINGS.maxRecordBytes, 256, 1024 * 1024 * 1024),
      pullLimit: intVar(env, 'SYNC_PULL_LIMIT', DEFAULT_SYNC_SETTINGS.pullLimit, 1, 1_000_000),
      pullMaxBytes: intVar(env, 'SYNC_PULL_MAX_BYTES', DEFAULT_SYNC_SETTINGS.pullMaxBytes, 1024, 1024 * 1024 * 1024),
      userQuotaBytes: intVar(env, 'SYNC_USER_QUOTA_BYTES', DEFAULT_SYNC_SETTINGS.userQuotaBytes, 0, Number.MAX_SAFE_INTEGER),
      pushQueuePerUser: intVar(env, 'SYNC_PUSH_QUEUE_PER_USER', DEFAULT_SYNC_SETTINGS.pushQueuePerUser, 0, 1000),
      schemaVersions: { min, max },
    },
    retention: retentionConfig(env),
    logLevel,
    syncLogQueueMax: intVar(env, 'SYNC_LOG_QUEUE_MAX', 10_000, 1, 10_000_000),
    rateLimits: {
      perIpPerMinute: intVar(env, 'RATE_LIMIT_IP_PER_MINUTE', 1200, 0, 10_000_000),
      perUserPerMinute: intVar(env, 'RATE_LIMIT_USER_PER_MINUTE', 600, 0, 10_000_000),
    },
    ...tlsConfig(env, production),
    trustProxy: boolVar(env, 'TRUST_PROXY'),
    trustProxyHops: trustProxyHops(env),
    fieldKeys: fieldKeys(env, production),
    decryptThreads: intVar(env, 'DECRYPT_THREADS', 0, 0, 64),
    adminUiDir: resolve(env['ADMIN_UI_DIR']?.trim() || join(packageRoot(), 'dist', 'admin')),
    ...alertWebhook(env),
    alertMaxPerUserPerHour: intVar(env, 'ALERT_MAX_PER_USER_PER_HOUR', 4, 1, 1_000_000),
    metrics: { port: null, host: '127.0.0.1', token: null },
    transactionTimeouts: {
      lockMs: intVar(env, 'SYNC_LOCK_TIMEOUT_MS', 5000, 0, 3_600_000),
      statementMs: intVar(env, 'SYNC_STATEMENT_TIMEOUT_MS', 30_000, 0, 3_600_000),
    },
    live: liveConfig(env),
    readReplicas: { urls: [], maxLagMs: 5000 },
    // Last, so a production configuration missing its keys hears about those first.
    database: databaseTarget(env),
  };
  config = { ...config, metrics: metricsConfig(env, config.port), readReplicas: readReplicas(env, config.database) };
  // Checked last, so the errors of a first production setup come in the order the README lists them.
  if (production) requireIssuerAndAudience(env, config.jwt);
  return config;
}

/** The live channel's limits (GET /api/sync/live; README, "Configuration"). */
function liveConfig(env: Env): AppConfig['live'] {
  return {
    heartbeatMs: intVar(env, 'LIVE_HEARTBEAT_SECONDS', 20, 1, 3600) * 1000,
    maxPerUser: intVar(env, 'LIVE_MAX_CONNECTIONS_PER_USER', 10, 0, 1_000_000),
    maxPerProcess: intVar(env, 'LIVE_MAX_CONNECTIONS', 20_000, 0, 10_000_000),
    slowClientMs: intVar(env, 'LIVE_SLOW_CLIENT_MS', 10_000, 100, 3_600_000),
    retryMs: 3_000,
  };
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/** FIELD_ENCRYPTION_KEYS: `id:base64key,id:base64key` (32-byte keys; the first encrypts, all decrypt). */
function fieldKeys(env: Env, production: boolean): AppConfig['fieldKeys'] {
  const raw = env['FIELD_ENCRYPTION_KEYS']?.trim();
  if (!raw) {
    if (production) throw new ConfigError('Set FIELD_ENCRYPTION_KEYS (id:base64-32-byte-key,…): production never stores private notes with a generated key.');
    // A PostgreSQL server outlives this machine's files and is shared by replicas: each would
    // generate its own key under the same id, and rows written under another could never be read.
    if (env['DATABASE_URL']?.trim() && !boolVar(env, 'ALLOW_GENERATED_FIELD_KEY')) {
      throw new ConfigError(
        'Set FIELD_ENCRYPTION_KEYS (id:base64-32-byte-key,…, e.g. main:$(openssl rand -base64 32)) when DATABASE_URL is set: a key generated on this machine differs on every replica and redeploy, and what one wrote the others can never decrypt. For a throwaway development database only, set ALLOW_GENERATED_FIELD_KEY=true.',
      );
    }
    const file = join(dirname(devSecretPath(env)), 'dev-field-key');
    return { ring: [{ id: 'dev', key: Buffer.from(loadOrCreateDevSecret(file), 'hex') }], devKeyFile: file };
  }
  const ring = raw.split(',').map((entry) => {
    const [id, key64, extra] = entry.trim().split(':');
    if (!id || !KEY_ID.test(id) || !key64 || extra !== undefined) throw new ConfigError('FIELD_ENCRYPTION_KEYS must be a comma list of id:base64key (ids of letters, digits, _ and -).');
    const key = Buffer.from(key64, 'base64');
    if (key.length !== 32) throw new ConfigError(`FIELD_ENCRYPTION_KEYS: key "${id}" is ${key.length} bytes; AES-256 needs 32 (openssl rand -base64 32).`);
    return { id, key };
  });
  if (new Set(ring.map((k) => k.id)).size !== ring.length) throw new ConfigError('FIELD_ENCRYPTION_KEYS lists a key id twice.');
  return { ring };
}

function boolVar(env: Env, name: string): boolean {
  const raw = env[name]?.trim() ?? '';
  if (!['', 'true', 'false'].includes(raw)) throw new ConfigError(`${name} must be true or false; got "${raw}".`);
  return raw === 'true';
}

/** TRUST_PROXY_HOPS: how many proxies in front append to X-Forwarded-For (1 when TRUST_PROXY=true). */
function trustProxyHops(env: Env): number {
  const trusted = boolVar(env, 'TRUST_PROXY');
  if (!trusted) {
    if (env['TRUST_PROXY_HOPS']?.trim()) throw new ConfigError('TRUST_PROXY_HOPS needs TRUST_PROXY=true (without it, X-Forwarded-For is ignored).');
    return 0;
  }
  return intVar(env, 'TRUST_PROXY_HOPS', 1, 1, 32);
}

function tlsConfig(env: Env, production: boolean): Pick<AppConfig, 'tls' | 'tlsTerminatedUpstream'> {
  const certFile = env['TLS_CERT_FILE']?.trim();
  const keyFile = env['TLS_KEY_FILE']?.trim();
  const tlsTerminatedUpstream = boolVar(env, 'TLS_TERMINATED_UPSTREAM');
  if (!certFile !== !keyFile) throw new ConfigError('Set both TLS_CERT_FILE and TLS_KEY_FILE (PEM files), or neither.');
  for (const [name, file] of [['TLS_CERT_FILE', certFile], ['TLS_KEY_FILE', keyFile]] as const) {
    if (file && !existsSync(file)) throw new ConfigError(`${name} names "${file}", which does not exist.`);
  }
  if (production && !certFile && !tlsTerminatedUpstream) {
    throw new ConfigError('In production the server needs TLS: set TLS_CERT_FILE and TLS_KEY_FILE, or TLS_TERMINATED_UPSTREAM=true when a proxy in front terminates TLS.');
  }
  return { tls: certFile && keyFile ? { certFile, keyFile } : null, tlsTerminatedUpstream };
}

function alertWebhook(env: Env): Pick<AppConfig, 'alertWebhook'> {
  const url = env['ALERT_WEBHOOK_URL']?.trim();
  if (!url) return {};
  if (!/^https?:\/\/[^\s]+$/.test(url)) throw new ConfigError(`ALERT_WEBHOOK_URL must be an http(s) URL; got "${url}".`);
  return {
    alertWebhook: {
      url,
      timeoutMs: intVar(env, 'ALERT_WEBHOOK_TIMEOUT_MS', 5000, 100, 120_000),
      retries: intVar(env, 'ALERT_WEBHOOK_RETRIES', 3, 0, 10),
    },
  };
}

/** METRICS_PORT, METRICS_HOST, METRICS_TOKEN: see AppConfig.metrics. */
function metricsConfig(env: Env, publicPort: number): AppConfig['metrics'] {
  const rawPort = env['METRICS_PORT']?.trim();
  const port = rawPort ? intVar(env, 'METRICS_PORT', 0, 0, 65535) : null;
  if (port !== null && port !== 0 && port === publicPort) throw new ConfigError(`METRICS_PORT (${port}) must differ from PORT: the metrics listener is a separate one.`);
  const host = env['METRICS_HOST']?.trim() || '127.0.0.1';
  const token = env['METRICS_TOKEN']?.trim() || null;
  if (token !== null && Buffer.byteLength(token) < 16) throw new ConfigError('METRICS_TOKEN must be at least 16 bytes long (openssl rand -hex 16).');
  return { port, host, token };
}
