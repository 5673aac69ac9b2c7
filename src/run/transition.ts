import { onResult, onStart } from "./attempts";
import type { DecideContext } from "./context";
import { advance } from "./decide";
import type { EventDraft, RunEvent } from "./events";
import { apply, type RunState } from "./state";
import { transitionOf } from "./tasks";

/** Guards the fixpoint loop against a decision bug that never settles. */
const MAX_ADVANCE_ROUNDS = 1000;

/** A command: the events it adds to the run as it stands. */
export type Command = (s: RunState, ctx: DecideContext) => EventDraft[];

/**
 * One commit's worth of change: folds each command's events into `state` (in place), each
 * command decided on what the ones before it made (an attempt started, then its result; the
 * reports of several attempts), then `advance` until the run settles, numbering and
 * timestamping every event. Pure apart from mutating `state` (only through `apply`, as the log's
 * fold does): the coordinator folds the log again should the write of these events fail.
 */
export function transition(state: RunState, ctx: DecideContext, ...commands: Command[]): RunEvent[] {
  const at = new Date(ctx.now).toISOString();
  const events: RunEvent[] = [];
  const push = (drafts: EventDraft[]): RunEvent[] => {
    const added: RunEvent[] = [];
    for (const d of drafts) {
      const event: RunEvent = { seq: state.seq + 1, at, ...d };
      apply(state, event);
      events.push(event);
      added.push(event);
    }
    return added;
  };
  const settle = () => {
    for (let round = 0; round < MAX_ADVANCE_ROUNDS; round++) {
      const more = advance(state, ctx);
      if (more.length === 0) return;
      runInline(push(more), state, ctx, push);
    }
    throw new Error(`run ${state.runId} did not settle after ${MAX_ADVANCE_ROUNDS} rounds`);
  };
  // The run first catches up with `now` — a wait whose time has come wakes (or times out) before
  // the command is decided — so an approval, a signal or a callback that arrives after a timeout
  // but before a late alarm cannot beat it.
  settle();
  for (const command of commands) runInline(push(command(state, ctx)), state, ctx, push);
  settle();
  return events;
}

/** Attempts dispatched inline (pure tools) start and finish right here, in the same commit. */
function runInline(
  added: RunEvent[],
  state: RunState,
  ctx: DecideContext,
  push: (d: EventDraft[]) => RunEvent[],
): void {
  for (const e of added) {
    if (e.data?.inline !== true) continue;
    const moved = transitionOf(e);
    if (moved?.transition !== "dispatched" || e.attempt === undefined) continue;
    const start = onStart(state, moved.ref, e.attempt, ctx);
    push(start.drafts);
    const outcome = start.grant && ctx.runInline?.(start.grant);
    if (outcome) push(onResult(state, moved.ref, e.attempt, outcome, ctx));
  }
}
