import type { Env } from "../env";
import { newSpanId } from "../observability/ids";
import { type Level, log, logs } from "../observability/log";
import { recordRun, recordStep } from "../observability/metrics";
import { findTask } from "./attempts";
import type { RunEvent } from "./events";
import type { RunState } from "./state";
import { transitionOf } from "./tasks";

/** Which events are worth a log line, at which level. Dispatches and starts stay in the event log only. */
const LEVELS: Partial<Record<RunEvent["type"], Level>> = {
  "run.created": "debug",
  "run.planned": "debug",
  "plan.llm_call": "info",
  "plan.fallback": "warn",
  "step.succeeded": "debug",
  "step.retry_scheduled": "warn",
  "step.failed": "warn",
  "step.dead_lettered": "warn",
  "step.ignored": "info",
  "step.waiting": "info",
  "signal.received": "info",
  "compensation.started": "warn",
  "compensation.step_skipped": "info",
  "compensation.step_succeeded": "info",
  "compensation.step_failed": "error",
  "compensation.step_retry_scheduled": "warn",
  "compensation.completed": "info",
  "compensation.failed": "error",
  "agent.turn": "debug",
  "agent.call_failed": "warn",
  "run.completed": "info",
  "run.failed": "warn",
  "run.cancelled": "info",
};

const TERMINAL = new Set(["run.completed", "run.failed", "run.cancelled"]);

/**
 * Logs a commit's notable events with the run's correlation fields (its `trace_id`, and the
 * `request_id` that created it, so one search joins the run with its POST's access line), writes a
 * step line and a metrics point for every attempt that ran inline (queued attempts get theirs from
 * the consumer), and the run's metrics point when it ends.
 */
export function logEvents(env: Env, state: RunState, events: readonly RunEvent[]): void {
  const base = {
    tenant: state.tenant,
    run_id: state.runId,
    trace_id: state.traceId,
    request_id: state.requestId ?? undefined,
  };
  const inlineStarts = new Map<string, number>();
  for (const e of events) {
    const d = e.data ?? {};
    const step = e.step_number === undefined ? undefined : state.steps.get(e.step_number);
    const level = LEVELS[e.type];
    if (level && logs(level)) {
      log(level, e.type, {
        ...base,
        seq: e.seq,
        ...(e.step_number === undefined ? {} : { step_number: e.step_number, tool: step?.step.tool_name }),
        ...(e.attempt === undefined ? {} : { attempt: e.attempt }),
        ...(typeof d.reason === "string" ? { reason: d.reason } : {}),
        ...(typeof d.delay_ms === "number" ? { delay_ms: d.delay_ms } : {}),
        ...(typeof d.error === "string"
          ? {
              error: {
                message: d.error,
                retryable: d.retryable ?? e.type.endsWith("retry_scheduled"),
                code: d.code ?? d.reason,
              },
            }
          : {}),
        ...(TERMINAL.has(e.type) ? { duration_ms: Date.parse(e.at) - Date.parse(state.createdAt) } : {}),
      });
    }
    inlineAttempt(env, state, e, inlineStarts, base);
    if (TERMINAL.has(e.type)) {
      recordRun(env, {
        tenant: state.tenant,
        status: state.status,
        planner: state.plan?.planner ?? "none",
        runId: state.runId,
        durationMs: Date.parse(e.at) - Date.parse(state.createdAt),
        steps: state.steps.size,
      });
    }
  }
}

/** An inline attempt dispatched, started and finished in this commit: the same line and point a consumer writes. */
function inlineAttempt(
  env: Env,
  state: RunState,
  e: RunEvent,
  inline: Map<string, number>,
  base: Record<string, unknown>,
): void {
  const moved = transitionOf(e);
  if (!moved) return;
  const key = `${moved.ref.kind}:${moved.ref.step}:${moved.ref.index}:${e.attempt}`;
  if (moved.transition === "dispatched") {
    if (e.data?.inline === true) inline.set(key, Date.parse(e.at));
    return;
  }
  if (
    !inline.has(key) ||
    (moved.transition !== "succeeded" && moved.transition !== "failed" && moved.transition !== "retry")
  )
    return;
  const tool = findTask(state, moved.ref)?.tool ?? "";
  const ok = moved.transition === "succeeded";
  const code =
    typeof e.data?.code === "string" ? e.data.code : typeof e.data?.reason === "string" ? e.data.reason : "failed";
  recordStep(env, {
    tenant: state.tenant,
    tool,
    outcome: ok ? "succeeded" : code,
    runId: state.runId,
    durationMs: 0,
    attempt: e.attempt ?? 1,
    kind: moved.ref.kind,
  });
  if (!logs(ok ? "debug" : "warn")) return;
  // Inline attempts finish in the commit that started them: their duration is below the clock's resolution.
  const fields = {
    ...base,
    step_number: moved.ref.step,
    attempt: e.attempt,
    tool,
    span_id: newSpanId(),
    duration_ms: 0,
    inline: true,
  };
  if (ok) log("debug", "step attempt succeeded", fields);
  else {
    const retryable = moved.transition === "retry" || e.data?.retryable === true;
    log("warn", "step attempt failed", { ...fields, error: { message: e.data?.error, code, retryable } });
  }
}
