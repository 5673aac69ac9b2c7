import type { Json } from "../contracts/common";
import type { CompensateSpec } from "../contracts/recovery";
import { dispatch } from "./attempts";
import type { DecideContext } from "./context";
import type { EventDraft } from "./events";
import type { RunState, StepState } from "./state";
import { DONE } from "./tasks";

/** What a compensation ordering needs of a succeeded step. */
export interface Undoable {
  step_number: number;
  /** The sequence number of its success: later successes are undone first. */
  completedSeq: number;
  depends_on: readonly number[];
}

/**
 * The order in which succeeded steps are undone: newest success first. A step starts only after
 * every step it depends on succeeded, so its success always comes later in the log than theirs:
 * newest-first therefore undoes every dependant before what it depended on, whatever the shape
 * of the DAG (diamonds, independent branches) — the property the unit tests check.
 */
export function compensationOrder(steps: readonly Undoable[]): number[] {
  return [...steps].sort((a, b) => b.completedSeq - a.completedSeq).map((s) => s.step_number);
}

/** A succeeded step's compensation: the plan's own, else its tool's declaration, else none. */
export function compensationOf(s: StepState, ctx: DecideContext): CompensateSpec | null {
  if (s.step.compensate) return s.step.compensate;
  const tool = ctx.registry.get(s.step.tool_name);
  return tool?.compensate?.(s.input as never, s.output) ?? null;
}

/**
 * Starts the run's second phase: records which succeeded steps will be undone (in order) and which
 * are skipped and why, and what the run ends with once they are done.
 */
export function startCompensation(
  state: RunState,
  ending: "run.failed" | "run.cancelled",
  error: string,
  ctx: DecideContext,
): EventDraft[] {
  const succeeded = [...state.steps.values()].filter((s) => s.phase === "succeeded" && s.completedSeq !== null);
  const order = compensationOrder(
    succeeded.map((s) => ({
      step_number: s.step.step_number,
      completedSeq: s.completedSeq as number,
      depends_on: s.step.depends_on,
    })),
  );
  const steps: Json[] = [];
  const skipped: EventDraft[] = [];
  for (const n of order) {
    const s = state.steps.get(n) as StepState;
    const spec = s.reusedFrom ? null : compensationOf(s, ctx);
    if (spec) {
      steps.push({ step_number: n, tool_name: spec.tool_name, tool_input: spec.tool_input });
    } else {
      const reason = s.reusedFrom
        ? `reused from run ${s.reusedFrom}; its effects belong to that run`
        : `${s.step.tool_name} declares no compensation for this call`;
      skipped.push({ type: "compensation.step_skipped", step_number: n, data: { reason } });
    }
  }
  return [{ type: "compensation.started", data: { ending, error, steps } }, ...skipped];
}

/**
 * Runs the compensations one at a time in their order, each a durable task (attempts, deadlines,
 * retries by its tool's policy, key `run:step:compensate`). One that fails for good does not stop
 * the others — best effort, and the failure stays visible — and the run then ends with the
 * terminal event decided when the compensation started.
 */
export function advanceCompensation(state: RunState, ctx: DecideContext): EventDraft[] {
  const comp = state.compensation;
  if (comp?.status !== "running") return [];
  for (const n of comp.order) {
    const task = state.steps.get(n)?.compensation;
    if (!task || DONE.has(task.phase)) continue;
    if (task.phase === "pending") return [dispatch(state, task, ctx)];
    if (task.phase === "backoff" && task.retryAt !== null && task.retryAt <= ctx.now)
      return [dispatch(state, task, ctx)];
    return []; // in flight, or backing off until its retry time (in the alarm's schedule)
  }
  const failed = comp.order.filter((n) => state.steps.get(n)?.compensation?.phase === "failed");
  return [
    failed.length === 0
      ? { type: "compensation.completed", data: { steps: comp.order.length } }
      : {
          type: "compensation.failed",
          data: { failed_steps: failed, error: `${failed.length} compensation(s) failed` },
        },
    { type: comp.ending, data: { error: comp.error } },
  ];
}
