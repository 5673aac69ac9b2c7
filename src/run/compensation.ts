import type { Json } from "../contracts/common";
import type { CompensateSpec } from "../contracts/recovery";
import { dispatch, findTask } from "./attempts";
import type { DecideContext } from "./context";
import type { EventDraft } from "./events";
import type { AgentCall, RunState, StepState } from "./state";
import { DONE } from "./tasks";

/**
 * Newest success first: the order of every undo (steps and agent calls alike). A step starts only
 * after every step it depends on succeeded, so its success always comes later in the log than
 * theirs: newest-first therefore undoes every dependant before what it depended on, whatever the
 * shape of the DAG (diamonds, independent branches) — the property the unit tests check.
 */
export const newestFirst = <T extends { completedSeq: number }>(items: readonly T[]): T[] =>
  [...items].sort((a, b) => b.completedSeq - a.completedSeq);

/** A succeeded step's compensation: the plan's own, else its tool's declaration, else none. */
export function compensationOf(s: StepState, ctx: DecideContext): CompensateSpec | null {
  if (s.step.compensate) return s.step.compensate;
  const tool = ctx.registry.get(s.step.tool_name);
  return tool?.compensate?.(s.input as never, s.output) ?? null;
}

/** Something that succeeded and may be undone: a step (`call` 0) or an agent step's tool call. */
interface Done {
  step: StepState;
  call: AgentCall | null;
  completedSeq: number;
}

/**
 * What the run's compensation considers, newest success first. A step counts once it succeeded;
 * an agent step counts by its tool calls instead (unless it succeeded and the plan gives it a
 * compensation of its own), each a
 * separate effect (the `todo_store` adds it made), whether the agent step itself succeeded or
 * not: an agent that failed after three adds still made them. A call succeeded before its step
 * ended, and so before any step that depended on it started: newest-first still undoes every
 * dependant first.
 */
function undoables(state: RunState): Done[] {
  const done: Done[] = [];
  for (const s of state.steps.values()) {
    // The plan's own compensation undoes an agent step that succeeded; one that did not succeed
    // (its compensation would undo an outcome it never had) is undone by its calls.
    if (s.agent !== null && !(s.step.compensate && s.phase === "succeeded")) {
      for (const c of s.agent?.calls ?? []) {
        if (c.phase === "succeeded" && c.completedSeq !== null)
          done.push({ step: s, call: c, completedSeq: c.completedSeq });
      }
    } else if (s.phase === "succeeded" && s.completedSeq !== null) {
      done.push({ step: s, call: null, completedSeq: s.completedSeq });
    }
  }
  return newestFirst(done);
}

/** Whether a run stopping under `compensate` has anything to undo (or to record as skipped). */
export const hasUndoable = (state: RunState): boolean => undoables(state).length > 0;

/**
 * Starts the run's second phase: records which succeeded steps and agent calls will be undone
 * (in order) and which are skipped and why, and what the run ends with once they are done.
 */
export function startCompensation(
  state: RunState,
  ending: "run.failed" | "run.cancelled",
  error: string,
  ctx: DecideContext,
): EventDraft[] {
  const steps: Json[] = [];
  const skipped: EventDraft[] = [];
  for (const { step: s, call: c } of undoables(state)) {
    const n = s.step.step_number;
    const at: Record<string, Json> = c ? { call: c.ref.index } : {};
    const spec = s.reusedFrom ? null : c ? callCompensationOf(c, ctx) : compensationOf(s, ctx);
    if (spec) {
      steps.push({ step_number: n, ...at, tool_name: spec.tool_name, tool_input: spec.tool_input });
    } else {
      const reason = s.reusedFrom
        ? `reused from run ${s.reusedFrom}; its effects belong to that run`
        : `${c ? c.tool : s.step.tool_name} declares no compensation for this call`;
      skipped.push({ type: "compensation.step_skipped", step_number: n, data: { ...at, reason } });
    }
  }
  return [{ type: "compensation.started", data: { ending, error, steps } }, ...skipped];
}

/** An agent call's compensation: its tool's declaration for the input it ran with and what it returned. */
function callCompensationOf(c: AgentCall, ctx: DecideContext): CompensateSpec | null {
  return ctx.registry.get(c.tool)?.compensate?.(c.input as never, c.output) ?? null;
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
  for (const ref of comp.order) {
    const task = findTask(state, ref);
    if (!task || DONE.has(task.phase)) continue;
    if (task.phase === "pending") return [dispatch(state, task, ctx)];
    if (task.phase === "backoff" && task.retryAt !== null && task.retryAt <= ctx.now)
      return [dispatch(state, task, ctx)];
    return []; // in flight, or backing off until its retry time (in the alarm's schedule)
  }
  const failedRefs = comp.order.filter((ref) => findTask(state, ref)?.phase === "failed");
  const failed = [...new Set(failedRefs.map((ref) => ref.step))];
  return [
    failed.length === 0
      ? { type: "compensation.completed", data: { steps: comp.order.length } }
      : {
          type: "compensation.failed",
          data: { failed_steps: failed, error: `${failedRefs.length} compensation(s) failed` },
        },
    { type: comp.ending, data: { error: comp.error } },
  ];
}
