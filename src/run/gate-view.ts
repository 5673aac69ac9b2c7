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

function approvalsOf(state: RunState): GateView["approvals"] {
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
  return approvals;
}

/** What the tenant's gate knows of a run: its place for the quotas, its listing, its open approvals. */
export function gateView(state: RunState, run: Run): GateView {
  return {
    seq: state.seq,
    place: placeOf(state),
    summary: summaryOf(run),
    tools: [...new Set(state.plan?.steps.map((s) => s.tool_name) ?? [])],
    approvals: approvalsOf(state),
  };
}

/**
 * What of a run the gate must hear about when it changes: its place, its open approvals, and what
 * the list shows differently (status, compensation). Steps that merely progress leave it alone,
 * and it is read from the state without building the run's view (every commit compares it).
 */
export function gateKey(state: RunState): string {
  return JSON.stringify([placeOf(state), state.status, state.compensation?.status ?? null, approvalsOf(state)]);
}
