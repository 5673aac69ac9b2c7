import type { Json } from "../contracts/common";
import type { RetryPolicy } from "../contracts/tool";
import { resolveReferences } from "../plan/references";
import { classifyError, type FailureInfo } from "../tools/errors";
import { backoffDelay } from "./backoff";
import type { EventDraft } from "./events";
import { stepPolicy } from "./policy";
import { ACTIVE_PHASES, isFinished, type RunState, type StepState, TERMINAL_PHASES } from "./state";

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

export interface DecideContext {
  now: number;
  random: () => number;
  /** The tool's declared retry policy. */
  policyFor: (toolName: string) => RetryPolicy;
  grace: Grace;
  /**
   * Runs a pure tool's attempt on the spot, or answers null when the tool must go through the
   * queue. Pure and synchronous, so a transition that uses it stays a function of its inputs.
   */
  runInline?: (grant: AttemptGrant) => AttemptOutcome | null;
  /** Whether `runInline` would run this tool. */
  canInline?: (toolName: string) => boolean;
}

const policyOf = (state: RunState, s: StepState, ctx: DecideContext) =>
  stepPolicy(s.step, state.options, ctx.policyFor(s.step.tool_name));

export type AttemptOutcome = { ok: true; output: Json } | { ok: false; error: FailureInfo };

/** What a consumer needs to run one attempt. */
export interface AttemptGrant {
  tool_name: string;
  input: Record<string, Json>;
  timeout_ms: number;
  idempotency_key: string;
  trace_id: string | null;
}

const ignored = (step: number, attempt: number, reason: string, extra: Record<string, Json> = {}): EventDraft => ({
  type: "step.ignored",
  step_number: step,
  attempt,
  data: { ignored: true, reason, ...extra },
});

function attemptFailed(state: RunState, s: StepState, failure: FailureInfo, ctx: DecideContext): EventDraft[] {
  const base = { step_number: s.step.step_number, attempt: s.attempt };
  const policy = policyOf(state, s, ctx);
  if (failure.retryable && s.attempt < policy.maxAttempts) {
    const delay = Math.max(backoffDelay(policy.backoff, s.attempt, ctx.random), failure.retry_after_ms ?? 0);
    return [
      {
        type: "step.retry_scheduled",
        ...base,
        data: { delay_ms: delay, retry_at: ctx.now + delay, reason: failure.code, error: failure.message },
      },
    ];
  }
  return [
    {
      type: "step.failed",
      ...base,
      data: { error: failure.message, code: failure.code, retryable: failure.retryable },
    },
  ];
}

/** A consumer asks to start `attempt` of a step: grant it only for the attempt on the queue. */
export function onStart(
  state: RunState,
  stepNumber: number,
  attempt: number,
  ctx: DecideContext,
): { drafts: EventDraft[]; grant: AttemptGrant | null } {
  const s = state.steps.get(stepNumber);
  if (!s) return { drafts: [ignored(stepNumber, attempt, "unknown step")], grant: null };
  if (isFinished(state)) return { drafts: [ignored(stepNumber, attempt, `run ${state.status}`)], grant: null };
  if (s.attempt !== attempt) return { drafts: [ignored(stepNumber, attempt, "stale attempt")], grant: null };
  if (s.phase !== "queued")
    return { drafts: [ignored(stepNumber, attempt, `attempt already ${s.phase}`)], grant: null };

  const outputs = new Map<number, Json>();
  for (const [n, other] of state.steps) if (other.phase === "succeeded") outputs.set(n, other.output);
  const timeout = policyOf(state, s, ctx).timeoutMs;
  const started: EventDraft = {
    type: "step.started",
    step_number: stepNumber,
    attempt,
    data: { deadline_at: ctx.now + timeout + ctx.grace.reportMs },
  };
  let input: Record<string, Json>;
  try {
    input = resolveReferences(s.step.tool_input, outputs) as Record<string, Json>;
  } catch (err) {
    return { drafts: [started, ...attemptFailed(state, s, classifyError(err), ctx)], grant: null };
  }
  started.data = { ...started.data, input };
  return {
    drafts: [started],
    grant: {
      tool_name: s.step.tool_name,
      input,
      timeout_ms: timeout,
      idempotency_key: `${state.runId}:${stepNumber}`,
      trace_id: state.traceId,
    },
  };
}

/** A consumer reports an attempt's outcome: applied once, and only for the current attempt. */
export function onResult(
  state: RunState,
  stepNumber: number,
  attempt: number,
  outcome: AttemptOutcome,
  ctx: DecideContext,
): EventDraft[] {
  const s = state.steps.get(stepNumber);
  const reported: Record<string, Json> = { outcome: outcome.ok ? "succeeded" : "failed" };
  if (!s) return [ignored(stepNumber, attempt, "unknown step", reported)];
  if (isFinished(state)) return [ignored(stepNumber, attempt, `run ${state.status}`, reported)];
  if (s.attempt !== attempt) return [ignored(stepNumber, attempt, "stale attempt", reported)];
  if (s.phase !== "running") return [ignored(stepNumber, attempt, `attempt already ${s.phase}`, reported)];
  if (outcome.ok) {
    return [{ type: "step.succeeded", step_number: stepNumber, attempt, data: { output: outcome.output } }];
  }
  return attemptFailed(state, s, outcome.error, ctx);
}

/** The queue gave up on a message (dead-letter queue): the attempt it carried has failed. */
export function onDeadLetter(
  state: RunState,
  stepNumber: number,
  attempt: number,
  reason: string,
  ctx: DecideContext,
): EventDraft[] {
  const s = state.steps.get(stepNumber);
  const current = s && !isFinished(state) && s.attempt === attempt && (s.phase === "queued" || s.phase === "running");
  if (!current)
    return [ignored(stepNumber, attempt, "dead letter for an attempt no longer current", { dead_letter: true })];
  return [
    { type: "step.dead_lettered", step_number: stepNumber, attempt, data: { reason } },
    ...attemptFailed(
      state,
      s,
      { message: `Queue gave up on the step: ${reason}`, retryable: true, code: "dead_letter" },
      ctx,
    ),
  ];
}

/** The watchdog: attempts past their deadline (consumer gone, message lost) time out. */
export function onTimeouts(state: RunState, ctx: DecideContext): EventDraft[] {
  if (isFinished(state)) return [];
  const drafts: EventDraft[] = [];
  for (const s of state.steps.values()) {
    if ((s.phase === "queued" || s.phase === "running") && s.deadlineAt !== null && s.deadlineAt <= ctx.now) {
      const message =
        s.phase === "queued" ? "Step was not picked up before its deadline" : "Step did not report before its deadline";
      drafts.push(...attemptFailed(state, s, { message, retryable: true, code: "timeout" }, ctx));
    }
  }
  return drafts;
}

const describeFailure = (s: StepState) => `step ${s.step.step_number} (${s.step.tool_name}): ${s.error ?? "failed"}`;

/**
 * Moves the run forward: applies the failure policy, skips steps whose dependencies cannot
 * succeed, dispatches ready steps within `max_parallel`, and ends the run when every step is
 * done. Called until it returns nothing.
 */
export function advance(state: RunState, ctx: DecideContext): EventDraft[] {
  if (isFinished(state) || !state.plan) return [];
  const steps = [...state.steps.values()];
  const failed = steps.filter((s) => s.phase === "failed");

  if (failed.length > 0 && state.options.on_failure === "fail_fast") {
    const first = failed[0] as StepState;
    const reason = `step ${first.step.step_number} failed`;
    return [
      ...steps
        .filter((s) => ACTIVE_PHASES.has(s.phase))
        .map(
          (s): EventDraft => ({
            type: "step.cancelled",
            step_number: s.step.step_number,
            attempt: s.attempt,
            data: { reason },
          }),
        ),
      ...steps
        .filter((s) => s.phase === "waiting")
        .map((s): EventDraft => ({ type: "step.skipped", step_number: s.step.step_number, data: { reason } })),
      {
        type: "run.failed",
        data: {
          error: `Step ${first.step.step_number} (${first.step.tool_name}) failed: ${first.error}`,
          failed_steps: [first.step.step_number],
        },
      },
    ];
  }

  const drafts: EventDraft[] = [];
  for (const s of steps) {
    if (s.phase !== "waiting") continue;
    const blocker = s.step.depends_on.find((d) => {
      const phase = state.steps.get(d)?.phase;
      return phase === "failed" || phase === "skipped" || phase === "cancelled";
    });
    if (blocker !== undefined) {
      drafts.push({
        type: "step.skipped",
        step_number: s.step.step_number,
        data: { reason: `dependency step ${blocker} did not succeed` },
      });
    }
  }
  if (drafts.length > 0) return drafts;

  const dispatch = (s: StepState): EventDraft => ({
    type: "step.dispatched",
    step_number: s.step.step_number,
    attempt: s.attempt + 1,
    data: {
      deadline_at: ctx.now + policyOf(state, s, ctx).timeoutMs + ctx.grace.dispatchMs,
      ...(ctx.canInline?.(s.step.tool_name) ? { inline: true } : {}),
    },
  });
  let inFlight = steps.filter((s) => ACTIVE_PHASES.has(s.phase)).length;
  for (const s of steps) {
    if (s.phase === "backoff" && s.retryAt !== null && s.retryAt <= ctx.now) drafts.push(dispatch(s));
  }
  for (const s of steps) {
    if (inFlight >= state.options.max_parallel) break;
    if (s.phase === "waiting" && s.step.depends_on.every((d) => state.steps.get(d)?.phase === "succeeded")) {
      drafts.push(dispatch(s));
      inFlight++;
    }
  }
  if (drafts.length > 0) return drafts;

  if (steps.every((s) => TERMINAL_PHASES.has(s.phase))) {
    if (failed.length === 0 && steps.every((s) => s.phase === "succeeded")) {
      const last = steps[steps.length - 1] as StepState;
      return [{ type: "run.completed", data: { result: last.output } }];
    }
    const count = failed.length;
    return [
      {
        type: "run.failed",
        data: {
          error: `${count} step${count === 1 ? "" : "s"} failed: ${failed.map(describeFailure).join("; ")}`,
          failed_steps: failed.map((s) => s.step.step_number),
        },
      },
    ];
  }
  return [];
}

/** Cancels an unfinished run: running work is cancelled, the rest skipped. */
export function onCancel(state: RunState, reason: string): EventDraft[] {
  const drafts: EventDraft[] = [];
  for (const s of state.steps.values()) {
    if (ACTIVE_PHASES.has(s.phase)) {
      drafts.push({
        type: "step.cancelled",
        step_number: s.step.step_number,
        attempt: s.attempt,
        data: { reason: "run cancelled" },
      });
    } else if (s.phase === "waiting") {
      drafts.push({ type: "step.skipped", step_number: s.step.step_number, data: { reason: "run cancelled" } });
    }
  }
  drafts.push({ type: "run.cancelled", data: { error: reason } });
  return drafts;
}

/** Epoch ms of the next deadline or retry, for the coordinator's single alarm. */
export function nextWake(state: RunState): number | null {
  if (isFinished(state)) return null;
  let wake: number | null = null;
  for (const s of state.steps.values()) {
    for (const t of [s.deadlineAt, s.retryAt]) if (t !== null && (wake === null || t < wake)) wake = t;
  }
  return wake;
}
