import type { Env } from "../env";
import { type Level, log } from "../observability/log";
import { recordRun } from "../observability/metrics";
import type { RunEvent } from "./events";
import type { RunState } from "./state";

/** Which events are worth a log line, at which level. Dispatches and starts stay in the event log only. */
const LEVELS: Partial<Record<RunEvent["type"], Level>> = {
  "run.created": "info",
  "run.planned": "debug",
  "plan.llm_call": "info",
  "plan.fallback": "warn",
  "step.succeeded": "debug",
  "step.retry_scheduled": "warn",
  "step.failed": "warn",
  "step.dead_lettered": "warn",
  "step.ignored": "info",
  "run.completed": "info",
  "run.failed": "warn",
  "run.cancelled": "info",
};

/**
 * Logs a commit's notable events with the run's correlation fields, and writes the run's metrics
 * point when it ends. Every line of a run carries its `trace_id`, so one search finds them all.
 */
export function logEvents(env: Env, state: RunState, events: readonly RunEvent[]): void {
  for (const e of events) {
    const level = LEVELS[e.type];
    if (!level) continue;
    const d = e.data ?? {};
    const step = e.step_number === undefined ? undefined : state.steps.get(e.step_number);
    log(level, e.type, {
      tenant: state.tenant,
      run_id: state.runId,
      trace_id: state.traceId,
      seq: e.seq,
      ...(e.step_number === undefined ? {} : { step_number: e.step_number, tool: step?.step.tool_name }),
      ...(e.attempt === undefined ? {} : { attempt: e.attempt }),
      ...(typeof d.reason === "string" ? { reason: d.reason } : {}),
      ...(typeof d.delay_ms === "number" ? { delay_ms: d.delay_ms } : {}),
      ...(typeof d.error === "string"
        ? {
            error: {
              message: d.error,
              retryable: d.retryable ?? e.type === "step.retry_scheduled",
              code: d.code ?? d.reason,
            },
          }
        : {}),
      ...(e.type === "run.completed" || e.type === "run.failed" || e.type === "run.cancelled"
        ? { duration_ms: Date.parse(e.at) - Date.parse(state.createdAt) }
        : {}),
    });
    if (e.type === "run.completed" || e.type === "run.failed" || e.type === "run.cancelled") {
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
