import type { AgentCall } from "../contracts/agent";
import type { Compensation } from "../contracts/recovery";
import type { ExecutionLogEntry, Run, StepStatus } from "../contracts/run";
import { findTask } from "./attempts";
import { newestFirst } from "./compensation";
import { type Phase, type RunState, type StepState, undoneBy } from "./state";
import type { Task } from "./tasks";

const STATUS: Record<Phase, StepStatus> = {
  pending: "pending",
  queued: "pending",
  running: "running",
  backoff: "running",
  waiting: "waiting",
  succeeded: "succeeded",
  failed: "failed",
  skipped: "skipped",
  cancelled: "cancelled",
};

const duration = (t: { startedAt: string | null; completedAt: string | null }) =>
  t.startedAt && t.completedAt ? Date.parse(t.completedAt) - Date.parse(t.startedAt) : null;

function call(c: Task & { turn: number }): AgentCall {
  const status = c.phase === "queued" ? "pending" : c.phase === "backoff" ? "running" : c.phase;
  return {
    call: c.ref.index,
    turn: c.turn,
    tool_name: c.tool,
    tool_input: c.input,
    status: status === "skipped" || status === "cancelled" ? "failed" : status,
    output: c.phase === "succeeded" ? c.output : null,
    error: c.phase === "cancelled" ? (c.error ?? "cancelled") : c.error,
    attempts: c.attempt,
    started_at: c.startedAt,
    completed_at: c.completedAt,
  };
}

function entry(s: StepState): ExecutionLogEntry {
  const status = STATUS[s.phase];
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
    duration_ms: duration(s),
    ...(s.phase === "waiting" && s.waiting ? { waiting: s.waiting } : {}),
    ...(s.agent ? { calls: s.agent.calls.map(call) } : {}),
  };
}

function compensation(state: RunState): Compensation | null {
  if (!state.compensation) return null;
  // In the order they are undone, newest success first: skipped ones where they would have been.
  const entries: { completedSeq: number; entry: Compensation["steps"][number] }[] = [];
  const skip = (step: number, call: number, tool: string, reason: string, seq: number | null) =>
    entries.push({
      completedSeq: seq ?? 0,
      entry: {
        step_number: step,
        ...(call > 0 ? { call } : {}),
        tool_name: tool,
        tool_input: {},
        status: "skipped",
        output: null,
        error: reason,
        attempts: 0,
      },
    });
  for (const s of state.steps.values()) {
    const n = s.step.step_number;
    if (s.compensationSkipped !== null) skip(n, 0, s.step.tool_name, s.compensationSkipped, s.completedSeq);
    for (const c of s.agent?.calls ?? []) {
      if (c.compensationSkipped !== null) skip(n, c.ref.index, c.tool, c.compensationSkipped, c.completedSeq);
    }
  }
  for (const ref of state.compensation.order) {
    const t = findTask(state, ref);
    if (!t) continue;
    const undone = undoneBy(state.steps.get(ref.step), ref.index);
    const status = t.phase === "queued" ? "pending" : t.phase === "backoff" ? "running" : t.phase;
    entries.push({
      completedSeq: undone?.completedSeq ?? 0,
      entry: {
        step_number: ref.step,
        ...(ref.index > 0 ? { call: ref.index } : {}),
        tool_name: t.tool,
        tool_input: t.input,
        status: status === "cancelled" ? "failed" : status,
        output: t.phase === "succeeded" ? t.output : null,
        error: t.error,
        attempts: t.attempt,
      },
    });
  }
  return { status: state.compensation.status, steps: newestFirst(entries).map((e) => e.entry) };
}

/** The wire shape of a run (docs/api.md "Run object"). */
export function toRun(state: RunState): Run {
  const execution_log = [...state.steps.values()].map(entry);
  return {
    run_id: state.runId,
    prompt: state.prompt,
    status: state.status,
    plan: state.plan,
    execution_log,
    result: state.status === "completed" ? state.result : null,
    error: state.error,
    created_at: state.createdAt,
    started_at: state.startedAt,
    completed_at: state.completedAt,
    waiting_for: execution_log.flatMap((e) => (e.waiting ? [{ step_number: e.step_number, ...e.waiting }] : [])),
    compensation: compensation(state),
    rerun_of: state.rerunOf,
    options: state.options,
  };
}
