/**
 * Retry delays (spec §5): Fibonacci seconds 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, then 55, never more
 * than five minutes. Pure, so the client's scheduler and the tests share one definition.
 */

const FIBONACCI_SECONDS = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55] as const;
export const MAX_RETRY_DELAY_MS = 5 * 60 * 1000;

/** Delay before retry number `attempt` (1 = the first retry), in milliseconds. */
export function retryDelayMs(attempt: number, capMs: number = MAX_RETRY_DELAY_MS): number {
  const index = Math.min(Math.max(Math.floor(attempt), 1), FIBONACCI_SECONDS.length) - 1;
  const seconds = FIBONACCI_SECONDS[index] ?? FIBONACCI_SECONDS[FIBONACCI_SECONDS.length - 1]!;
  return Math.min(seconds * 1000, capMs, MAX_RETRY_DELAY_MS);
}
