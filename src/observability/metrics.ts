import type { Env } from "../env";

/**
 * Per-step and per-run data points for Workers Analytics Engine (the `METRICS` binding, optional:
 * without it nothing is written). Blobs are the dimensions to group by, doubles the measures, and
 * the index is the tenant, so that sampling keeps each tenant's share.
 *
 * Step points:  blob1 what ran — "step", "compensation", "agent_turn" or "agent_call" — blob2 tool,
 *               blob3 outcome (succeeded|failed|timeout|…), blob4 run_id
 *               double1 duration_ms, double2 attempt
 * Run points:   blob1 "run", blob2 status, blob3 planner, blob4 run_id
 *               double1 duration_ms, double2 step_count
 */
const POINT_KIND: Record<string, string> = {
  step: "step",
  compensate: "compensation",
  turn: "agent_turn",
  call: "agent_call",
};

export function recordStep(
  env: Env,
  p: {
    tenant: string;
    tool: string;
    outcome: string;
    runId: string;
    durationMs: number;
    attempt: number;
    /** The task kind (a step, a compensation, an agent's turn or call); default a step. */
    kind?: string;
  },
): void {
  env.METRICS?.writeDataPoint({
    indexes: [p.tenant],
    blobs: [POINT_KIND[p.kind ?? "step"] ?? "step", p.tool, p.outcome, p.runId],
    doubles: [p.durationMs, p.attempt],
  });
}

export function recordRun(
  env: Env,
  p: { tenant: string; status: string; planner: string; runId: string; durationMs: number; steps: number },
): void {
  env.METRICS?.writeDataPoint({
    indexes: [p.tenant],
    blobs: ["run", p.status, p.planner, p.runId],
    doubles: [p.durationMs, p.steps],
  });
}
