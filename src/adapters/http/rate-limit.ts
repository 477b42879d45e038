import type Koa from 'koa';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { syncError } from '../../domain';
import { sendError } from './respond';

export interface RateLimits {
  /** Requests per minute per client IP on /api routes, before authentication; 0 = unlimited. */
  readonly perIpPerMinute: number;
  /** Requests per minute per user on /api routes; 0 = unlimited. */
  readonly perUserPerMinute: number;
}

/**
 * A fixed-window limit per key (rate-limiter-flexible, in memory: each process counts its own
 * requests, so N processes allow up to N times the limit). Returns false after answering 429.
 */
export function limiter(perMinute: number): (ctx: Koa.Context, key: string) => Promise<boolean> {
  if (perMinute <= 0) return async () => true;
  const limit = new RateLimiterMemory({ points: perMinute, duration: 60 });
  return async (ctx, key) => {
    try {
      await limit.consume(key);
      return true;
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      const seconds = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
      sendError(ctx, syncError('RATE_LIMITED', `Too many requests; retry in ${seconds} s.`, { retry_after_seconds: seconds }));
      ctx.set('Retry-After', String(seconds));
      return false;
    }
  };
}
