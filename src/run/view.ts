import type { ExecutionLogEntry, Run, StepStatus } from "../contracts/run";
import type { Phase, RunState, StepState } from "./state";

const STATUS: Record<Phase, StepStatus> = {
  waiting: "pending",
  queued: "pending",
  running: "running",
  backoff: "running",
  succeeded: "succeeded",
  failed: "failed",
  skipped: "skipped",
  cancelled: "cancelled",
};

function entry(s: StepState): ExecutionLogEntry {
  const status = STATUS[s.phase];
  const duration = s.startedAt && s.completedAt ? Date.parse(s.completedAt) - Date.parse(s.startedAt) : null;
  return {
    step_number: s.step.step_number,
    tool_name: s.step.tool_name,
    tool_input: s.input,
    status,
    success: status === "succeeded" ? true : status === "failed" ? false : null,
    output: status === "succeeded" ? s.output : null,
    error: s.error,
    attempts: s.attempt,
    started_at: s.startedAt,
    completed_at: s.completedAt,
    duration_ms: duration,
  };
}

/** The wire shape of a run (API.md "Run object"). */
export function toRun(state: RunState): Run {
  return {
    run_id: state.runId,
    prompt: state.prompt,
    status: state.status,
    plan: state.plan,
    execution_log: [...state.steps.values()].map(entry),
    result: state.status === "completed" ? state.result : null,
    error: state.error,
    created_at: state.createdAt,
    started_at: state.startedAt,
    completed_at: state.completedAt,
    waiting_for: [],
    compensation: null,
    rerun_of: null,
  };
}
