import type { RetryPolicy } from "../contracts/tool";

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): a uniform delay in [0, min(cap, base · factor^(attempt-1))). Full jitter spreads
 * the retries of many runs that failed together, instead of sending them back in a wave.
 */
export function backoffDelay(policy: RetryPolicy, failedAttempt: number, random: () => number): number {
  const ceiling = Math.min(policy.max_delay_ms, policy.base_delay_ms * policy.factor ** (failedAttempt - 1));
  return Math.floor(random() * ceiling);
}
