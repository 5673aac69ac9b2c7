/** Circuit breaker settings (BREAKER_* vars). */
export interface BreakerConfig {
  /** Failures within `windowMs` that open the breaker. */
  threshold: number;
  windowMs: number;
  /** How long an open breaker refuses before it lets a probe through. */
  cooldownMs: number;
  /** How long a probe may take before another is allowed. */
  probeLeaseMs: number;
}

export const DEFAULT_BREAKER: BreakerConfig = {
  threshold: 5,
  windowMs: 30_000,
  cooldownMs: 10_000,
  probeLeaseMs: 30_000,
};

export type BreakerPhase = "closed" | "open" | "half_open";

export interface BreakerState {
  phase: BreakerPhase;
  /** Times of recent failures (within the window). */
  failures: number[];
  openedAt: number | null;
  /** While a probe runs (half-open), until when no other probe is let through. */
  probeUntil: number | null;
}

export const closedBreaker = (): BreakerState => ({ phase: "closed", failures: [], openedAt: null, probeUntil: null });

export type Admission = { allow: true; probe: boolean } | { allow: false; retryAfterMs: number };

/**
 * The breaker's state machine, pure: closed → open after `threshold` failures in `windowMs` →
 * half-open after `cooldownMs`, letting one probe through → closed on its success, open again
 * on its failure.
 */
export function admit(s: BreakerState, now: number, cfg: BreakerConfig): { state: BreakerState; admission: Admission } {
  if (s.phase === "closed") return { state: s, admission: { allow: true, probe: false } };
  if (s.phase === "open") {
    const reopensAt = (s.openedAt ?? now) + cfg.cooldownMs;
    if (now < reopensAt) return { state: s, admission: { allow: false, retryAfterMs: reopensAt - now } };
    return {
      state: { ...s, phase: "half_open", probeUntil: now + cfg.probeLeaseMs },
      admission: { allow: true, probe: true },
    };
  }
  if (s.probeUntil !== null && now < s.probeUntil) {
    return { state: s, admission: { allow: false, retryAfterMs: Math.min(cfg.cooldownMs, s.probeUntil - now) } };
  }
  return { state: { ...s, probeUntil: now + cfg.probeLeaseMs }, admission: { allow: true, probe: true } };
}

export function recordOutcome(s: BreakerState, ok: boolean, now: number, cfg: BreakerConfig): BreakerState {
  if (ok) return s.phase === "closed" ? s : closedBreaker();
  if (s.phase !== "closed") return { phase: "open", failures: [], openedAt: now, probeUntil: null };
  const failures = [...s.failures.filter((t) => t > now - cfg.windowMs), now];
  if (failures.length >= cfg.threshold) return { phase: "open", failures, openedAt: now, probeUntil: null };
  return { ...s, failures };
}

/**
 * Whether an attempt's outcome tells the tool's breaker that the tool is healthy: a success, bad
 * input (not retryable) and an attempt that only waited for the tenant's own limit (`waited`) say
 * nothing against it; transient failures and timeouts do.
 */
export const healthSignal = (
  outcome: { ok: true } | { ok: false; error: { retryable: boolean; waited?: true } },
): boolean => outcome.ok || !outcome.error.retryable || outcome.error.waited === true;
