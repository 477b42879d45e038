import 'reflect-metadata';
import { Container } from 'inversify';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { JwtTokenVerifier } from '../adapters/crypto/jwt-token-verifier';
import { NodeSha256Digest } from '../adapters/crypto/node-digest';
import { createHttpApp } from '../adapters/http/app';
import { KnexChangeStore } from '../adapters/postgres/knex-change-store';
import { CheckReadiness } from '../application/check-readiness';
import { TOKENS, type ChangeStore, type Clock, type Digest, type TokenVerifier } from '../application/ports';
import { PullChanges } from '../application/pull-changes';
import { PushChanges } from '../application/push-changes';
import type { SyncSettings } from '../application/settings';
import type { AppConfig } from './config';

export const ROOT = {
  Database: Symbol.for('Database'),
  Logger: Symbol.for('Logger'),
  HttpApp: Symbol.for('HttpApp'),
} as const;

export const systemClock: Clock = { now: () => Date.now() };

/** The only place that knows every piece: ports bound to adapters, use cases to their ports. */
export function buildContainer(config: AppConfig, db: Knex, logger: Logger, clock: Clock = systemClock): Container {
  const c = new Container({ defaultScope: 'Singleton' });
  c.bind<Knex>(ROOT.Database).toConstantValue(db);
  c.bind<Logger>(ROOT.Logger).toConstantValue(logger);
  c.bind<Clock>(TOKENS.Clock).toConstantValue(clock);
  c.bind<SyncSettings>(TOKENS.SyncSettings).toConstantValue(config.sync);
  c.bind<Digest>(TOKENS.Digest).toResolvedValue(() => new NodeSha256Digest());
  c.bind<TokenVerifier>(TOKENS.TokenVerifier).toResolvedValue(() => new JwtTokenVerifier(config.jwt));
  c.bind<ChangeStore>(TOKENS.ChangeStore).toResolvedValue((d: Knex) => new KnexChangeStore(d), [ROOT.Database]);
  c.bind(TOKENS.PullChanges).toResolvedValue((s: ChangeStore, st: SyncSettings) => new PullChanges(s, st), [TOKENS.ChangeStore, TOKENS.SyncSettings]);
  c.bind(TOKENS.PushChanges).toResolvedValue(
    (s: ChangeStore, cl: Clock, d: Digest, st: SyncSettings) => new PushChanges(s, cl, d, st),
    [TOKENS.ChangeStore, TOKENS.Clock, TOKENS.Digest, TOKENS.SyncSettings],
  );
  c.bind(TOKENS.CheckReadiness).toResolvedValue((s: ChangeStore) => new CheckReadiness(s), [TOKENS.ChangeStore]);
  c.bind(ROOT.HttpApp).toResolvedValue(
    (pullChanges: PullChanges, pushChanges: PushChanges, checkReadiness: CheckReadiness, tokenVerifier: TokenVerifier, log: Logger) =>
      createHttpApp({ pullChanges, pushChanges, checkReadiness, tokenVerifier, logger: log, maxBodyBytes: config.maxBodyBytes, compressAboveBytes: config.compressAboveBytes }),
    [TOKENS.PullChanges, TOKENS.PushChanges, TOKENS.CheckReadiness, TOKENS.TokenVerifier, ROOT.Logger],
  );
  return c;
}
