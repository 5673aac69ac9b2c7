import { advanceAgent, startAgent } from "./agent";
import { dispatch, dueRetries } from "./attempts";
import { advanceCompensation, hasUndoable, startCompensation } from "./compensation";
import type { DecideContext } from "./context";
import type { EventDraft } from "./events";
import { ACTIVE, DONE, isFinished, type RunState, type StepState } from "./state";
import type { Task } from "./tasks";
import { beginWait, type Decision, deliverBuffered, wakeUps } from "./waiting";

const describeFailure = (s: StepState) => `step ${s.step.step_number} (${s.step.tool_name}): ${s.error ?? "failed"}`;

/**
 * Stops a run: in-flight and waiting steps are cancelled, the rest skipped; then either the
 * compensation phase starts (when asked, and something succeeded) or the run ends at once.
 */
function stopRun(
  state: RunState,
  how: {
    reason: string;
    ending: "run.failed" | "run.cancelled";
    error: string;
    compensate: boolean;
    data?: EventDraft["data"];
  },
  ctx: DecideContext,
): EventDraft[] {
  const steps = [...state.steps.values()];
  const drafts: EventDraft[] = [
    ...steps
      .filter((s) => ACTIVE.has(s.phase) || s.phase === "waiting")
      .map(
        (s): EventDraft => ({
          type: "step.cancelled",
          step_number: s.step.step_number,
          attempt: s.attempt,
          data: { reason: how.reason },
        }),
      ),
    ...steps
      .filter((s) => s.phase === "pending")
      .map(
        (s): EventDraft => ({ type: "step.skipped", step_number: s.step.step_number, data: { reason: how.reason } }),
      ),
  ];
  if (how.compensate && hasUndoable(state)) {
    return [...drafts, ...startCompensation(state, how.ending, how.error, ctx)];
  }
  return [...drafts, { type: how.ending, data: { error: how.error, ...how.data } }];
}

/** Starts a ready step: a control wait, an agent loop, or an attempt (queued or inline). */
function start(state: RunState, s: StepState, ctx: DecideContext): EventDraft[] {
  const control = ctx.registry.get(s.step.tool_name)?.control;
  if (control === "agent") return startAgent(state, s, ctx);
  if (control) return beginWait(state, s, ctx);
  return [dispatch(state, s as unknown as Task, ctx)];
}

/**
 * Moves the run forward: applies the failure policy, wakes timers and delivers buffered signals,
 * skips steps whose dependencies cannot succeed, retries what is due, advances agent loops,
 * starts ready steps within `max_parallel`, and ends the run when every step is done. The
 * transition calls it until it returns nothing.
 */
export function advance(state: RunState, ctx: DecideContext): EventDraft[] {
  if (isFinished(state) || !state.plan) return [];
  if (state.compensation) return advanceCompensation(state, ctx);
  const steps = [...state.steps.values()];
  const failed = steps.filter((s) => s.phase === "failed");
  const policy = state.options.on_failure;

  if (failed.length > 0 && policy !== "continue") {
    const first = failed[0] as StepState;
    return stopRun(
      state,
      {
        reason: `step ${first.step.step_number} failed`,
        ending: "run.failed",
        error: `Step ${first.step.step_number} (${first.step.tool_name}) failed: ${first.error}`,
        compensate: policy === "compensate",
        data: { failed_steps: [first.step.step_number] },
      },
      ctx,
    );
  }

  const woken = [...wakeUps(state, ctx), ...deliverBuffered(state)];
  if (woken.length > 0) return woken;

  const skips: EventDraft[] = [];
  for (const s of steps) {
    if (s.phase !== "pending") continue;
    const blocker = s.step.depends_on.find((d) => {
      const phase = state.steps.get(d)?.phase;
      return phase === "failed" || phase === "skipped" || phase === "cancelled";
    });
    if (blocker !== undefined) {
      skips.push({
        type: "step.skipped",
        step_number: s.step.step_number,
        data: { reason: `dependency step ${blocker} did not succeed` },
      });
    }
  }
  if (skips.length > 0) return skips;

  const drafts = [...dueRetries(state, ctx), ...steps.flatMap((s) => advanceAgent(state, s, ctx))];
  let inFlight = steps.filter((s) => ACTIVE.has(s.phase)).length;
  for (const s of steps) {
    if (s.phase !== "pending" || !s.step.depends_on.every((d) => state.steps.get(d)?.phase === "succeeded")) continue;
    // A wait holds nothing — no consumer, no slot — so it starts whatever max_parallel says.
    const waits = ctx.registry.get(s.step.tool_name)?.control;
    if (waits === "timer" || waits === "approval" || waits === "signal") {
      drafts.push(...beginWait(state, s, ctx));
      continue;
    }
    if (inFlight >= state.options.max_parallel) continue;
    drafts.push(...start(state, s, ctx));
    inFlight++;
  }
  if (drafts.length > 0) return drafts;

  if (steps.every((s) => DONE.has(s.phase))) {
    if (steps.every((s) => s.phase === "succeeded")) {
      const last = steps[steps.length - 1] as StepState;
      return [{ type: "run.completed", data: { result: last.output } }];
    }
    const count = failed.length;
    return [
      {
        type: "run.failed",
        data: {
          error: `${count} step${count === 1 ? "" : "s"} failed: ${failed.map(describeFailure).join("; ")}`,
          failed_steps: failed.map((s) => s.step.step_number),
        },
      },
    ];
  }
  return [];
}

/**
 * Cancels an unfinished run: running work is cancelled, waits end (an approval leaves the inbox),
 * the rest is skipped; with `compensate`, what succeeded is undone before the run ends cancelled.
 */
export function onCancel(state: RunState, reason: string, compensate: boolean, ctx: DecideContext): Decision {
  if (isFinished(state)) {
    return { ok: false, status: 409, detail: `Run '${state.runId}' already finished with status ${state.status}` };
  }
  if (state.compensation) {
    return {
      ok: false,
      status: 409,
      detail: `Run '${state.runId}' is compensating; it ends by itself once its compensations are done`,
    };
  }
  return {
    ok: true,
    drafts: stopRun(state, { reason: "run cancelled", ending: "run.cancelled", error: reason, compensate }, ctx),
    answer: undefined,
  };
}
