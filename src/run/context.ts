import type { PlanStep } from "../contracts/plan";
import type { RunOptions } from "../contracts/run";
import type { RetryPolicy } from "../contracts/tool";
import type { ToolRegistry } from "../tools/registry";
import type { AttemptGrant, AttemptOutcome } from "../tools/types";
import { DEFAULT_RETRY, isPure } from "../tools/types";
import type { Task } from "./tasks";

/** How long past its timeout the watchdog waits before it declares an attempt lost. */
export interface Grace {
  /**
   * Extra time a dispatched attempt may sit on the queue before a consumer starts it. Queues
   * deliver in milliseconds when healthy; a backlog or a lost message shows up as a timeout.
   */
  dispatchMs: number;
  /** Extra time past the step timeout for the consumer's own report to arrive. */
  reportMs: number;
}

export const DEFAULT_GRACE: Grace = { dispatchMs: 30_000, reportMs: 5_000 };

/**
 * What a decision may consult besides the state. Everything here is a value or a pure function
 * (time and randomness are passed in), so a decision is a function of its inputs and the unit
 * tests drive the exact code the Durable Object runs.
 */
export interface DecideContext {
  now: number;
  random: () => number;
  /** A fresh secret of at least 128 random bits, URL-safe (callback tokens). */
  secret: () => string;
  registry: ToolRegistry;
  grace: Grace;
  /** Whether pure tools (`executeInline`) run inside the coordinator instead of through the queue. */
  inline: boolean;
  /** Runs a pure tool's attempt on the spot (synchronous, no I/O). */
  runInline?: (grant: AttemptGrant) => AttemptOutcome;
  /** The run's Durable Object id: callback tokens carry it so a keyless callback finds the run. */
  objectId: string | null;
}

/** What governs one task's attempts once every override is applied. */
export interface TaskPolicy {
  maxAttempts: number;
  timeoutMs: number;
  backoff: RetryPolicy;
}

/**
 * The step's own overrides win, then the run's options, then the tool's declared policy. A
 * compensation and an agent's tool call follow the run's options and their tool's policy.
 */
export function policyFor(task: Task, step: PlanStep, options: RunOptions, ctx: DecideContext): TaskPolicy {
  const tool = ctx.registry.get(task.tool)?.retry ?? DEFAULT_RETRY;
  const own: Pick<PlanStep, "max_attempts" | "timeout_ms" | "retry"> =
    task.ref.kind === "step" || task.ref.kind === "turn" ? step : {};
  return {
    maxAttempts: own.max_attempts ?? options.max_attempts ?? tool.max_attempts,
    timeoutMs: own.timeout_ms ?? options.step_timeout_ms,
    backoff: { ...tool, ...options.retry, ...own.retry, max_attempts: tool.max_attempts },
  };
}

export const canInline = (tool: string, ctx: DecideContext): boolean =>
  ctx.inline && ctx.runInline !== undefined && isPure(ctx.registry.get(tool));
