import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Alerts, StreakChange } from '../../application/ports';

/** An error-level structured log line per alert: every deployment has this one. */
export class LogAlerts implements Alerts {
  constructor(private readonly logger: Logger) {}

  async userSyncFailing(alert: StreakChange): Promise<void> {
    this.logger.error({ alert: 'sync_failing', user_id: alert.userId, streak: alert.streak, error_code: alert.errorCode, at: alert.at }, `sync keeps failing for user ${alert.userId}`);
  }
}

export interface WebhookOptions {
  readonly url: string;
  readonly timeoutMs: number;
  /** Attempts after the first, spaced by `retryDelayMs` × attempt. */
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly fetch?: typeof fetch;
}

/** POSTs each alert as JSON to ALERT_WEBHOOK_URL, with a timeout and bounded retries; never throws. */
export class WebhookAlerts implements Alerts {
  constructor(
    private readonly options: WebhookOptions,
    private readonly logger: Logger,
  ) {}

  async userSyncFailing(alert: StreakChange): Promise<void> {
    const body = JSON.stringify({ alert: 'sync_failing', user_id: alert.userId, streak: alert.streak, error_code: alert.errorCode, at: alert.at });
    const doFetch = this.options.fetch ?? globalThis.fetch;
    for (let attempt = 0; attempt <= this.options.retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, this.options.retryDelayMs * attempt));
      try {
        const res = await doFetch(this.options.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(this.options.timeoutMs) });
        await res.body?.cancel().catch(() => undefined); // the answer's body is not needed; free the connection
        if (res.ok) return;
        this.logger.warn({ status: res.status, attempt }, 'alert webhook refused the alert');
      } catch (e) {
        this.logger.warn({ err: e, attempt }, 'alert webhook unreachable');
      }
    }
    this.logger.error({ user_id: alert.userId }, 'alert webhook failed after every retry');
  }
}

/** Sends each alert to every channel. */
export class FanOutAlerts implements Alerts {
  constructor(private readonly channels: readonly Alerts[]) {}

  async userSyncFailing(alert: StreakChange): Promise<void> {
    await Promise.all(this.channels.map((c) => c.userSyncFailing(alert)));
  }
}

/**
 * At most `perHour` alerts per user per hour reach `inner` (rate-limiter-flexible, in memory: each
 * process counts its own). A user whose streak keeps restarting (four failures, one success, over
 * and over) would otherwise raise an alert every five requests. The first alert held back in a
 * window is said once at warn, so an operator knows the channel was bounded.
 */
export class BoundedAlerts implements Alerts {
  private readonly limit: RateLimiterMemory;

  constructor(
    private readonly inner: Alerts,
    private readonly perHour: number,
    private readonly logger: Logger,
  ) {
    this.limit = new RateLimiterMemory({ points: perHour, duration: 3600 });
  }

  async userSyncFailing(alert: StreakChange): Promise<void> {
    try {
      await this.limit.consume(alert.userId);
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      if (e.consumedPoints === this.perHour + 1) {
        this.logger.warn({ user_id: alert.userId, max_per_hour: this.perHour, retry_after_seconds: Math.ceil(e.msBeforeNext / 1000) }, `alerts held back for user ${alert.userId}: over ALERT_MAX_PER_USER_PER_HOUR`);
      }
      return;
    }
    await this.inner.userSyncFailing(alert);
  }
}
