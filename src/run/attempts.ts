import type { Json } from "../contracts/common";
import type { StepMessage } from "../contracts/tool";
import { resolveReferences } from "../plan/references";
import { classifyError, type FailureInfo } from "../tools/errors";
import { type AttemptGrant, type AttemptOutcome, runsOnGrant } from "../tools/types";
import { agentTurnContext } from "./agent";
import { backoffDelay } from "./backoff";
import { canInline, type DecideContext, policyFor } from "./context";
import type { EventDraft } from "./events";
import { allTasks, isFinished, type RunState, type StepState, undoneBy } from "./state";
import { idempotencyKey, iso, MAX_WAITS, TASK_EVENTS, type Task, type TaskRef, taskName } from "./tasks";

/** The task a reference names, or undefined. */
export function findTask(state: RunState, ref: TaskRef): Task | undefined {
  const s = state.steps.get(ref.step);
  if (!s) return undefined;
  if (ref.kind === "step") return s as unknown as Task;
  if (ref.kind === "compensate") return undoneBy(s, ref.index)?.compensation ?? undefined;
  const list: Task[] = (ref.kind === "turn" ? s.agent?.turns : s.agent?.calls) ?? [];
  return list.find((t) => t.ref.index === ref.index);
}

/** `data` fields that say which turn or call an agent event is about (a compensation's: the call it undoes). */
export const indexData = (ref: TaskRef): Record<string, Json> =>
  ref.kind === "turn" ? { turn: ref.index } : ref.kind !== "step" && ref.index > 0 ? { call: ref.index } : {};

const stepOf = (state: RunState, ref: TaskRef) => state.steps.get(ref.step) as StepState;

const policy = (state: RunState, task: Task, ctx: DecideContext) =>
  policyFor(task, stepOf(state, task.ref).step, state.options, ctx);

export const ignored = (
  ref: TaskRef,
  attempt: number,
  reason: string,
  extra: Record<string, Json> = {},
): EventDraft => {
  const task = taskName(ref);
  return {
    type: "step.ignored",
    step_number: ref.step,
    attempt,
    data: { ignored: true, reason, ...(task ? { task } : {}), ...extra },
  };
};

/** The next attempt of a task, through the queue or (for a pure tool) inline. */
export function dispatch(
  state: RunState,
  task: Task,
  ctx: DecideContext,
  extra: Record<string, Json> = {},
): EventDraft {
  const inline = canInline(task.tool, ctx);
  return {
    type: TASK_EVENTS[task.ref.kind].dispatched,
    step_number: task.ref.step,
    attempt: task.attempt + 1,
    data: {
      ...indexData(task.ref),
      ...extra,
      deadline_at: iso(ctx.now + policy(state, task, ctx).timeoutMs + ctx.grace.dispatchMs),
      ...(inline ? { inline: true } : {}),
    },
  };
}

/** A failed attempt: retried with backoff while it may be, else the task fails for good. */
export function attemptFailed(state: RunState, task: Task, failure: FailureInfo, ctx: DecideContext): EventDraft[] {
  const events = TASK_EVENTS[task.ref.kind];
  const base = { step_number: task.ref.step, attempt: task.attempt };
  const p = policy(state, task, ctx);
  // An attempt that only waited (for the tenant's LLM budget) does not count against max_attempts,
  // up to MAX_WAITS of them: near the end of a day, calls take turns instead of failing.
  const waited = failure.waited === true && task.waits < MAX_WAITS;
  if (failure.retryable && (waited || task.attempt - task.waits < p.maxAttempts)) {
    const delay = Math.max(backoffDelay(p.backoff, task.attempt, ctx.random), failure.retry_after_ms ?? 0);
    return [
      {
        type: events.retry,
        ...base,
        data: {
          ...indexData(task.ref),
          delay_ms: delay,
          retry_at: iso(ctx.now + delay),
          reason: failure.code,
          error: failure.message,
          ...(waited ? { waited: true } : {}),
        },
      },
    ];
  }
  return [
    {
      type: events.failed,
      ...base,
      data: { ...indexData(task.ref), error: failure.message, code: failure.code, retryable: failure.retryable },
    },
  ];
}

/** Outputs of the succeeded steps, for resolving references. */
export function stepOutputs(state: RunState): Map<number, Json> {
  const outputs = new Map<number, Json>();
  for (const [n, s] of state.steps) if (s.phase === "succeeded") outputs.set(n, s.output);
  return outputs;
}

function current(state: RunState, ref: TaskRef, attempt: number, phase: string, extra: Record<string, Json> = {}) {
  const task = findTask(state, ref);
  if (!task) return { rejection: ignored(ref, attempt, "unknown task", extra) };
  if (isFinished(state)) return { rejection: ignored(ref, attempt, `run ${state.status}`, extra) };
  if (task.attempt !== attempt) return { rejection: ignored(ref, attempt, "stale attempt", extra) };
  if (task.phase !== phase) return { rejection: ignored(ref, attempt, `attempt already ${task.phase}`, extra) };
  return { task };
}

/** Whether `attempt` is the task's current attempt and still waits for a consumer to start it. */
export const awaitsConsumer = (state: RunState, ref: TaskRef, attempt: number): boolean =>
  current(state, ref, attempt, "queued").task !== undefined;

/** A consumer (or the inline runner) asks to start an attempt: granted only for the attempt on the queue. */
export function onStart(
  state: RunState,
  ref: TaskRef,
  attempt: number,
  ctx: DecideContext,
): { drafts: EventDraft[]; grant: AttemptGrant | null } {
  const found = current(state, ref, attempt, "queued");
  if (!found.task) return { drafts: [found.rejection], grant: null };
  const task = found.task;
  const timeout = policy(state, task, ctx).timeoutMs;
  const started: EventDraft = {
    type: TASK_EVENTS[ref.kind].started,
    step_number: ref.step,
    attempt,
    data: { ...indexData(ref), deadline_at: iso(ctx.now + timeout + ctx.grace.reportMs) },
  };
  let input: Record<string, Json>;
  try {
    // An agent's tool call runs with what the model wrote, and so does its compensation (built by
    // the call's tool from that input): model-written text never resolves references. Steps and
    // the plan's compensations may name outputs.
    input =
      ref.kind === "call" || ref.kind === "turn" || (ref.kind === "compensate" && ref.index > 0)
        ? task.template
        : (resolveReferences(task.template, stepOutputs(state)) as Record<string, Json>);
  } catch (err) {
    return { drafts: [started, ...attemptFailed(state, task, classifyError(err), ctx)], grant: null };
  }
  if (ref.kind !== "turn") started.data = { ...started.data, input };
  return {
    drafts: [started],
    grant: {
      tool_name: task.tool,
      input,
      timeout_ms: timeout,
      idempotency_key: idempotencyKey(state.runId, ref),
      trace_id: state.traceId,
      ...(ref.kind === "turn" ? { turn: agentTurnContext(state, stepOf(state, ref), ctx) } : {}),
    },
  };
}

/** Largest input a queue message carries with its grant (JSON characters); larger ones are asked for. */
export const MAX_MESSAGE_GRANT_CHARS = 32 * 1024;

/**
 * The grant a dispatched step's queue message may carry: for a side-effect-free tool (a pure one,
 * or `sleepTool`), the consumer need not ask before it runs the attempt — running a stale or
 * duplicate attempt of it changes nothing — so the message brings the resolved input. A pure
 * tool's one report then starts and ends the attempt in one commit (`reportAttempts`, `ran`); a
 * slower one runs while its start is recorded (`startAttempts`, then `reportAttempts`). Null for any other
 * task, or when the input does not resolve or is too large: the consumer asks first.
 */
export function messageGrant(
  state: RunState,
  ref: TaskRef,
  attempt: number,
  ctx: DecideContext,
): NonNullable<StepMessage["grant"]> | null {
  const task = ref.kind === "step" && awaitsConsumer(state, ref, attempt) ? findTask(state, ref) : undefined;
  const tool = task ? ctx.registry.get(task.tool) : undefined;
  if (!task || !runsOnGrant(tool)) return null;
  let input: Record<string, Json>;
  try {
    input = resolveReferences(task.template, stepOutputs(state)) as Record<string, Json>;
  } catch {
    return null;
  }
  if (JSON.stringify(input).length > MAX_MESSAGE_GRANT_CHARS) return null;
  return {
    tool_name: task.tool,
    input,
    timeout_ms: policy(state, task, ctx).timeoutMs,
    idempotency_key: idempotencyKey(state.runId, ref),
  };
}

/** What a success is recorded with: the output, or for a model turn the model's answer itself. */
function successData(ref: TaskRef, output: Json): Record<string, Json> {
  if (ref.kind !== "turn") return { ...indexData(ref), output };
  const o = (output ?? {}) as Record<string, Json>;
  return {
    turn: ref.index,
    tokens: typeof o.tokens === "number" ? o.tokens : 0,
    ...(typeof o.answer === "string" ? { answer: o.answer } : { tool_calls: o.tool_calls ?? [] }),
    ...(typeof o.answer_bytes === "number" ? { answer_bytes: o.answer_bytes } : {}),
    ...(typeof o.calls_refused === "number" ? { calls_refused: o.calls_refused } : {}),
  };
}

/** A consumer reports an attempt's outcome: applied once, and only for the current attempt. */
export function onResult(
  state: RunState,
  ref: TaskRef,
  attempt: number,
  outcome: AttemptOutcome,
  ctx: DecideContext,
): EventDraft[] {
  const found = current(state, ref, attempt, "running", { outcome: outcome.ok ? "succeeded" : "failed" });
  if (!found.task) return [found.rejection];
  if (outcome.ok) {
    return [
      {
        type: TASK_EVENTS[ref.kind].succeeded,
        step_number: ref.step,
        attempt,
        data: successData(ref, outcome.output),
      },
    ];
  }
  return attemptFailed(state, found.task, outcome.error, ctx);
}

/** The queue gave up on a message (dead-letter queue): the attempt it carried has failed. */
export function onDeadLetter(
  state: RunState,
  ref: TaskRef,
  attempt: number,
  reason: string,
  ctx: DecideContext,
): EventDraft[] {
  const task = findTask(state, ref);
  const live =
    task && !isFinished(state) && task.attempt === attempt && (task.phase === "queued" || task.phase === "running");
  if (!task || !live)
    return [ignored(ref, attempt, "dead letter for an attempt no longer current", { dead_letter: true })];
  return [
    { type: "step.dead_lettered", step_number: ref.step, attempt, data: { reason, ...indexData(ref) } },
    ...attemptFailed(
      state,
      task,
      { message: `Queue gave up on the step: ${reason}`, retryable: true, code: "dead_letter" },
      ctx,
    ),
  ];
}

/** The watchdog: attempts past their deadline (consumer gone, message lost) time out. */
export function onTimeouts(state: RunState, ctx: DecideContext): EventDraft[] {
  if (isFinished(state)) return [];
  const drafts: EventDraft[] = [];
  for (const task of allTasks(state)) {
    if (
      (task.phase === "queued" || task.phase === "running") &&
      task.deadlineAt !== null &&
      task.deadlineAt <= ctx.now
    ) {
      const message =
        task.phase === "queued"
          ? "Step was not picked up before its deadline"
          : "Step did not report before its deadline";
      drafts.push(...attemptFailed(state, task as Task, { message, retryable: true, code: "timeout" }, ctx));
    }
  }
  return drafts;
}

/** Retries whose backoff is over, for every kind of task. */
export function dueRetries(state: RunState, ctx: DecideContext): EventDraft[] {
  const drafts: EventDraft[] = [];
  for (const task of allTasks(state)) {
    if (task.phase !== "backoff" || task.retryAt === null || task.retryAt > ctx.now) continue;
    drafts.push(dispatch(state, task as Task, ctx));
  }
  return drafts;
}

/** Epoch ms of the next deadline, retry or wake-up, for the coordinator's single alarm. */
export function nextWake(state: RunState): number | null {
  if (isFinished(state)) return null;
  let wake: number | null = null;
  const consider = (t: number | null) => {
    if (t !== null && (wake === null || t < wake)) wake = t;
  };
  for (const task of allTasks(state)) {
    consider(task.deadlineAt);
    consider(task.retryAt);
  }
  for (const s of state.steps.values()) consider(s.wakeAt);
  return wake;
}
