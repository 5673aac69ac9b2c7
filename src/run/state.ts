import type { Json } from "../contracts/common";
import type { Plan, PlanStep } from "../contracts/plan";
import type { RunOptions, RunStatus } from "../contracts/run";
import type { RunEvent } from "./events";

/** Where a step is inside the coordinator; finer than the wire `status`. */
export type Phase =
  | "waiting" // not dispatched yet (dependencies or max_parallel)
  | "queued" // an attempt is on the queue
  | "running" // a consumer started the attempt
  | "backoff" // an attempt failed; the next one waits for `retryAt`
  | "succeeded"
  | "failed"
  | "skipped"
  | "cancelled";

export const ACTIVE_PHASES: ReadonlySet<Phase> = new Set(["queued", "running", "backoff"]);
export const TERMINAL_PHASES: ReadonlySet<Phase> = new Set(["succeeded", "failed", "skipped", "cancelled"]);

export interface StepState {
  step: PlanStep;
  phase: Phase;
  /** The current attempt (0 before the first dispatch). Only results for it are accepted. */
  attempt: number;
  /** The input as planned, replaced by the resolved input once an attempt starts. */
  input: Record<string, Json>;
  /** Epoch ms by which the current attempt must report, else it is timed out. */
  deadlineAt: number | null;
  /** Epoch ms at which the next attempt may be dispatched. */
  retryAt: number | null;
  output: Json;
  error: string | null;
  startedAt: string | null;
  completedAt: string | null;
}

export interface RunState {
  runId: string;
  tenant: string;
  prompt: string;
  options: RunOptions;
  traceId: string | null;
  status: RunStatus;
  plan: Plan | null;
  /** By step number, in ascending order. */
  steps: Map<number, StepState>;
  result: Json;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  /** Sequence number of the last event folded in. */
  seq: number;
}

const num = (v: Json | undefined): number | null => (typeof v === "number" ? v : null);

function stepOf(state: RunState, event: RunEvent): StepState | undefined {
  return event.step_number === undefined ? undefined : state.steps.get(event.step_number);
}

function finishStep(s: StepState, phase: Phase, at: string): void {
  s.phase = phase;
  s.deadlineAt = null;
  s.retryAt = null;
  if (phase !== "skipped") s.completedAt = at;
}

/**
 * Folds one event into the state (in place). Pure with respect to the outside world: the same
 * events always give the same state, which is how an evicted coordinator rebuilds itself.
 */
export function apply(state: RunState, event: RunEvent): void {
  state.seq = event.seq;
  const d = event.data ?? {};
  const s = stepOf(state, event);
  switch (event.type) {
    case "run.created":
      break; // handled by `initial`
    case "plan.llm_call":
    case "plan.fallback":
      break; // how the plan was made; the plan itself arrives with run.planned
    case "run.planned": {
      const plan = d.plan as unknown as Plan;
      state.plan = plan;
      state.status = "running";
      state.startedAt = event.at;
      state.steps = new Map(
        [...plan.steps]
          .sort((a, b) => a.step_number - b.step_number)
          .map((step) => [
            step.step_number,
            {
              step,
              phase: "waiting",
              attempt: 0,
              input: step.tool_input,
              deadlineAt: null,
              retryAt: null,
              output: null,
              error: null,
              startedAt: null,
              completedAt: null,
            },
          ]),
      );
      break;
    }
    case "step.dispatched":
      if (!s) break;
      s.phase = "queued";
      s.attempt = event.attempt ?? s.attempt + 1;
      s.deadlineAt = num(d.deadline_at);
      s.retryAt = null;
      break;
    case "step.started":
      if (!s) break;
      s.phase = "running";
      s.input = (d.input as Record<string, Json>) ?? s.input;
      s.deadlineAt = num(d.deadline_at);
      s.startedAt ??= event.at;
      break;
    case "step.succeeded":
      if (!s) break;
      s.output = d.output ?? null;
      s.error = null;
      finishStep(s, "succeeded", event.at);
      break;
    case "step.failed":
      if (!s) break;
      s.error = typeof d.error === "string" ? d.error : "Step failed";
      finishStep(s, "failed", event.at);
      break;
    case "step.retry_scheduled":
      if (!s) break;
      s.phase = "backoff";
      s.error = typeof d.error === "string" ? d.error : s.error;
      s.deadlineAt = null;
      s.retryAt = num(d.retry_at);
      break;
    case "step.skipped":
      if (s) finishStep(s, "skipped", event.at);
      break;
    case "step.cancelled":
      if (s) finishStep(s, "cancelled", event.at);
      break;
    case "step.ignored":
    case "step.dead_lettered":
      break; // recorded for audit; the failure that follows changes the state
    case "run.completed":
      state.status = "completed";
      state.result = d.result ?? null;
      state.completedAt = event.at;
      break;
    case "run.failed":
      state.status = "failed";
      state.error = typeof d.error === "string" ? d.error : "Run failed";
      state.completedAt = event.at;
      state.startedAt ??= event.at;
      break;
    case "run.cancelled":
      state.status = "cancelled";
      state.error = typeof d.error === "string" ? d.error : "Run cancelled";
      state.completedAt = event.at;
      break;
  }
}

/** The state a run starts in, from its `run.created` event. */
export function initial(created: RunEvent): RunState {
  const d = created.data ?? {};
  return {
    runId: String(d.run_id),
    tenant: String(d.tenant),
    prompt: String(d.prompt),
    options: d.options as unknown as RunOptions,
    traceId: typeof d.trace_id === "string" ? d.trace_id : null,
    status: "pending",
    plan: null,
    steps: new Map(),
    result: null,
    error: null,
    createdAt: created.at,
    startedAt: null,
    completedAt: null,
    seq: created.seq,
  };
}

/** `reduce(events) → state`: the whole state of a run from its log. Null for an empty log. */
export function reduce(events: readonly RunEvent[]): RunState | null {
  const [first, ...rest] = events;
  if (!first) return null;
  const state = initial(first);
  for (const e of rest) apply(state, e);
  return state;
}

export const isFinished = (state: RunState): boolean =>
  state.status === "completed" || state.status === "failed" || state.status === "cancelled";
