/**
 * The error taxonomy that drives retries. A tool throws `ToolError` with `retryable` set by
 * what a second attempt could change: bad input never gets better, a flaky upstream may.
 * Anything else a tool throws is treated as transient (retryable).
 */
export class ToolError extends Error {
  readonly retryable: boolean;
  readonly code: string;
  /** The earliest a retry is useful (an upstream's `Retry-After`), or undefined. */
  readonly retryAfterMs: number | undefined;
  /** The tool never ran: it waited for a limit the tenant shares (see `FailureInfo.waited`). */
  readonly waited: boolean;
  constructor(
    message: string,
    opts: { retryable: boolean; code?: string; cause?: unknown; retryAfterMs?: number | null; waited?: boolean },
  ) {
    super(message, { cause: opts.cause });
    this.name = "ToolError";
    this.retryable = opts.retryable;
    this.code = opts.code ?? (opts.retryable ? "transient" : "invalid_input");
    this.retryAfterMs = opts.retryAfterMs ?? undefined;
    this.waited = opts.waited === true;
  }
}

/** A step outcome that must not be retried. */
export const nonRetryable = (message: string, code = "invalid_input"): ToolError =>
  new ToolError(message, { retryable: false, code });

/** Shape of a failure as the coordinator records it. */
export interface FailureInfo {
  message: string;
  retryable: boolean;
  code: string;
  /** The earliest useful retry (an open circuit breaker's cooldown); the backoff never goes below it. */
  retry_after_ms?: number;
  /**
   * The attempt did nothing but wait for a limit the tenant shares (its LLM budget, held by its
   * calls in flight): it does not count against `max_attempts` (up to `MAX_WAITS` such attempts)
   * and says nothing about the tool's health.
   */
  waited?: true;
}

/** Classifies anything thrown by a tool into a recorded failure. */
export function classifyError(err: unknown): FailureInfo {
  if (err instanceof ToolError) {
    return {
      message: err.message,
      retryable: err.retryable,
      code: err.code,
      ...(err.retryAfterMs === undefined ? {} : { retry_after_ms: err.retryAfterMs }),
      ...(err.waited ? { waited: true as const } : {}),
    };
  }
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return { message: "Step timed out", retryable: true, code: "timeout" };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { message: message || "Tool failed", retryable: true, code: "transient" };
}
