import type { PlanStep } from "../contracts/plan";
import type { RunOptions } from "../contracts/run";
import type { RetryPolicy } from "../contracts/tool";

/** What governs one step's attempts once every override is applied. */
export interface StepPolicy {
  maxAttempts: number;
  timeoutMs: number;
  backoff: RetryPolicy;
}

/**
 * Resolves a step's retry and timeout policy: the step's own overrides win, then the run's
 * options, then the tool's declared policy.
 */
export function stepPolicy(step: PlanStep, options: RunOptions, tool: RetryPolicy): StepPolicy {
  return {
    maxAttempts: step.max_attempts ?? options.max_attempts ?? tool.max_attempts,
    timeoutMs: step.timeout_ms ?? options.step_timeout_ms,
    backoff: { ...tool, ...options.retry, ...step.retry, max_attempts: tool.max_attempts },
  };
}
