import { advance, type DecideContext, onResult, onStart } from "./decide";
import type { EventDraft, RunEvent } from "./events";
import { apply, type RunState } from "./state";

/** Guards the fixpoint loop against a decision bug that never settles. */
const MAX_ADVANCE_ROUNDS = 1000;

/**
 * One command's worth of change: folds `first`'s events into `state` (in place), then
 * `advance` until the run settles, numbering and timestamping every event. Pure apart from
 * mutating `state`, so the coordinator runs it on a copy and swaps it in after the write.
 */
export function transition(
  state: RunState,
  ctx: DecideContext,
  first: (s: RunState, ctx: DecideContext) => EventDraft[],
): RunEvent[] {
  const at = new Date(ctx.now).toISOString();
  const events: RunEvent[] = [];
  const push = (drafts: EventDraft[]) => {
    for (const d of drafts) {
      const event: RunEvent = { seq: state.seq + 1, at, ...d };
      apply(state, event);
      events.push(event);
    }
  };
  push(first(state, ctx));
  for (let round = 0; round < MAX_ADVANCE_ROUNDS; round++) {
    const more = advance(state, ctx);
    if (more.length === 0) return events;
    push(more);
    // Pure tools dispatched inline run right here: started and finished in the same commit.
    for (const d of more) {
      if (d.type !== "step.dispatched" || d.data?.inline !== true) continue;
      const step = d.step_number as number;
      const attempt = d.attempt as number;
      const start = onStart(state, step, attempt, ctx);
      push(start.drafts);
      const outcome = start.grant && ctx.runInline?.(start.grant);
      if (outcome) push(onResult(state, step, attempt, outcome, ctx));
    }
  }
  throw new Error(`run ${state.runId} did not settle after ${MAX_ADVANCE_ROUNDS} rounds`);
}
