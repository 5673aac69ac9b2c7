import { advance, type DecideContext } from "./decide";
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
  }
  throw new Error(`run ${state.runId} did not settle after ${MAX_ADVANCE_ROUNDS} rounds`);
}
