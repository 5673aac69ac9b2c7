import type { RunSummary } from "../contracts/history";
import type { Run } from "../contracts/run";
import type { GateView, RunPlace } from "../tenancy/gate";
import { isFinished, isParked, type RunState } from "./state";

/** A run as `GET /runs` lists it. */
export function summaryOf(run: Run): RunSummary {
  return {
    run_id: run.run_id,
    prompt: run.prompt,
    status: run.status,
    planner: run.plan?.planner ?? null,
    step_count: run.execution_log.length,
    result: run.result,
    error: run.error,
    created_at: run.created_at,
    completed_at: run.completed_at,
    duration_ms: run.completed_at ? Date.parse(run.completed_at) - Date.parse(run.created_at) : null,
    rerun_of: run.rerun_of,
    compensation: run.compensation ? { status: run.compensation.status } : null,
  };
}

export const placeOf = (state: RunState): RunPlace =>
  isFinished(state) ? "finished" : isParked(state) ? "waiting" : "active";

/** What the tenant's gate knows of a run: its place for the quotas, its listing, its open approvals. */
export function gateView(state: RunState, run: Run): GateView {
  const approvals: GateView["approvals"] = [];
  for (const s of state.steps.values()) {
    if (s.phase === "waiting" && s.waiting?.kind === "approval") {
      approvals.push({
        step_number: s.step.step_number,
        message: s.waiting.message ?? "",
        since: s.waiting.since,
        timeout_at: s.waiting.until,
      });
    }
  }
  return {
    seq: state.seq,
    place: placeOf(state),
    summary: summaryOf(run),
    tools: [...new Set(state.plan?.steps.map((s) => s.tool_name) ?? [])],
    approvals,
  };
}

/**
 * Whether the gate must hear of a change between two views: a new place, different approvals, or
 * a summary the list shows differently (status, result, compensation). Steps that merely progress
 * cost the gate nothing.
 */
export function gateChanged(before: GateView | null, after: GateView): boolean {
  if (!before) return true;
  return (
    before.place !== after.place ||
    JSON.stringify(before.approvals) !== JSON.stringify(after.approvals) ||
    before.summary.status !== after.summary.status ||
    JSON.stringify(before.summary.compensation) !== JSON.stringify(after.summary.compensation)
  );
}
