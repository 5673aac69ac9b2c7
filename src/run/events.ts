import type { Json } from "../contracts/common";
import type { EventType, RunEvent } from "../contracts/run";

/** An event before the log gives it its sequence number and time. */
export interface EventDraft {
  type: EventType;
  step_number?: number;
  attempt?: number;
  data?: Record<string, Json>;
}

export type { RunEvent };

export const TERMINAL_RUN_EVENTS: ReadonlySet<EventType> = new Set(["run.completed", "run.failed", "run.cancelled"]);
