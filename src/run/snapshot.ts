import type { Run, RunEvent } from "../contracts/run";

/** What the archive pulls from a run's coordinator: the run as the API shows it, plus its log once finished. */
export interface RunSnapshot {
  tenant: string;
  run: Run;
  /** The plan's planner (`rules`, `llm`, `explicit`), or null when planning failed. */
  planner: string | null;
  /** Sequence number of the last event the snapshot reflects. */
  seq: number;
  finished: boolean;
  /** The whole event log, present only for a finished run. */
  events: RunEvent[] | null;
}
