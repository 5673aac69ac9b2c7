import type { Json } from "../contracts/common";
import type { Plan, PlanStep } from "../contracts/plan";
import type { RerunOf } from "../contracts/recovery";
import type { RunOptions, RunStatus } from "../contracts/run";
import type { WaitingInfo } from "../contracts/waiting";
import type { RunEvent } from "./events";
import {
  ACTIVE,
  applyTransition,
  DONE,
  finish,
  newTask,
  type Task,
  type TaskPhase,
  type TaskRef,
  timeOf,
  transitionOf,
} from "./tasks";

/** Where a step is inside the coordinator; finer than the wire `status`. */
export type Phase = TaskPhase | "waiting";

export { ACTIVE, DONE };

/** A signal that arrived before any step waited for it: kept until a `signal` step takes it. */
export interface BufferedSignal {
  seq: number;
  name: string;
  data: Json;
  at: string;
}

export interface AgentCall extends Task {
  turn: number;
  /** Sequence number of the call's success: where its compensation falls in the undo order. */
  completedSeq: number | null;
  /** Its compensation, once the run compensates and the call's tool declares one. */
  compensation: Task | null;
  /** Why the run's compensation skipped this succeeded call, or null. */
  compensationSkipped: string | null;
}

/** An agent step's loop: its model turns and the tool calls they asked for. */
export interface AgentState {
  turns: Task[];
  calls: AgentCall[];
  tokens: number;
}

export interface StepState extends Omit<Task, "phase"> {
  step: PlanStep;
  phase: Phase;
  /** While a control step waits: what for (the wire's `waiting` object). */
  waiting: WaitingInfo | null;
  /** When a waiting step wakes by itself (its timer, or its timeout). */
  wakeAt: number | null;
  /** Sequence number of the step's success: the order its compensations undo in. */
  completedSeq: number | null;
  /** The run whose output this step reused (a rerun), or null. */
  reusedFrom: string | null;
  /** Its compensation, once the run compensates and the step has one. */
  compensation: Task | null;
  /** Why the run's compensation skipped this succeeded step, or null. */
  compensationSkipped: string | null;
  agent: AgentState | null;
}

export interface CompensationState {
  status: "running" | "completed" | "failed";
  /** The run's terminal event once every compensation is done, and its error. */
  ending: "run.failed" | "run.cancelled";
  error: string;
  /** What to undo, newest success first: steps (index 0) and agent calls (index = the call). */
  order: TaskRef[];
}

export interface RunState {
  runId: string;
  tenant: string;
  prompt: string;
  options: RunOptions;
  traceId: string | null;
  /** The request that created the run (its logs carry it, to join them with the access line). */
  requestId: string | null;
  /** Where the API was reached; callback URLs are built on it. */
  origin: string | null;
  rerunOf: RerunOf | null;
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
  signals: BufferedSignal[];
  /** Answers given to signals by `Idempotency-Key`, so a replay gets the same one. */
  signalKeys: Map<string, { bodyHash: string; answer: { delivered_to: number | null; buffered: boolean } }>;
  compensation: CompensationState | null;
}

const str = (v: Json | undefined): string | null => (typeof v === "string" ? v : null);
const num = (v: Json | undefined): number | null => (typeof v === "number" ? v : null);

function stepOf(state: RunState, event: RunEvent): StepState | undefined {
  return event.step_number === undefined ? undefined : state.steps.get(event.step_number);
}

function newStep(step: PlanStep): StepState {
  return {
    ...newTask({ step: step.step_number, kind: "step", index: 0 }, step.tool_name, step.tool_input),
    step,
    waiting: null,
    wakeAt: null,
    completedSeq: null,
    reusedFrom: null,
    compensation: null,
    compensationSkipped: null,
    agent: null,
  };
}

/** What a compensation of `index` undoes: the step itself (0), or the step's agent call `index`. */
export function undoneBy(s: StepState | undefined, index: number): StepState | AgentCall | undefined {
  return index === 0 ? s : s?.agent?.calls.find((c) => c.ref.index === index);
}

/** The task an attempt event moves: the step itself, its compensation, or an agent turn or call. */
function taskFor(s: StepState, event: RunEvent, kind: string, index: number): Task | undefined {
  const d = event.data ?? {};
  if (kind === "step") return s as unknown as Task;
  if (kind === "compensate") return undoneBy(s, index)?.compensation ?? undefined;
  s.agent ??= { turns: [], calls: [], tokens: 0 };
  const list: Task[] = kind === "turn" ? s.agent.turns : s.agent.calls;
  const found = list.find((t) => t.ref.index === index);
  if (found) return found;
  const ref = { step: s.step.step_number, kind: kind as "turn" | "call", index };
  if (kind === "turn") {
    const turn = newTask(ref, s.step.tool_name, {});
    s.agent.turns.push(turn);
    s.agent.turns.sort((a, b) => a.ref.index - b.ref.index);
    return turn;
  }
  const call: AgentCall = {
    ...newTask(ref, str(d.tool_name) ?? "", (d.tool_input as Record<string, Json>) ?? {}),
    turn: num(d.turn) ?? 0,
    completedSeq: null,
    compensation: null,
    compensationSkipped: null,
  };
  s.agent.calls.push(call);
  s.agent.calls.sort((a, b) => a.ref.index - b.ref.index);
  return call;
}

/** Ends a step's agent sub-tasks that are still in flight (the step ended around them). */
function cancelSubtasks(s: StepState, at: string): void {
  for (const t of [...(s.agent?.turns ?? []), ...(s.agent?.calls ?? [])]) {
    if (!DONE.has(t.phase)) finish(t, "cancelled", at);
  }
}

function endStep(s: StepState, phase: TaskPhase, at: string): void {
  finish(s, phase, at);
  s.waiting = null;
  s.wakeAt = null;
  cancelSubtasks(s, at);
}

/**
 * Folds one event into the state (in place). Pure with respect to the outside world: the same
 * events always give the same state, which is how an evicted coordinator rebuilds itself.
 */
export function apply(state: RunState, event: RunEvent): void {
  state.seq = event.seq;
  const d = event.data ?? {};
  const s = stepOf(state, event);

  const moved = transitionOf(event);
  if (moved) {
    if (!s) return;
    // A step's own success or failure ends its agent loop, if it has one.
    if (moved.ref.kind === "step" && (moved.transition === "succeeded" || moved.transition === "failed")) {
      cancelSubtasks(s, event.at);
    }
    const task = taskFor(s, event, moved.ref.kind, moved.ref.index);
    if (!task) return;
    const output = moved.ref.kind === "turn" ? turnOutput(d) : (d.output ?? null);
    applyTransition(task, moved.transition, event, output);
    if (moved.ref.kind === "step") afterStepTransition(state, s, event);
    else if (moved.ref.kind === "turn") afterTurnTransition(s, moved.transition, event);
    else if (moved.ref.kind === "call" && moved.transition === "succeeded")
      (task as AgentCall).completedSeq = event.seq;
    return;
  }

  switch (event.type) {
    case "run.created":
    case "plan.llm_call":
    case "plan.fallback":
    case "step.ignored":
    case "step.dead_lettered":
      break; // recorded for audit (creation is `initial`'s); what changes the state follows
    case "run.planned": {
      const plan = d.plan as unknown as Plan;
      state.plan = plan;
      state.status = "running";
      state.startedAt = event.at;
      state.steps = new Map(
        [...plan.steps].sort((a, b) => a.step_number - b.step_number).map((step) => [step.step_number, newStep(step)]),
      );
      break;
    }
    case "step.reused":
      if (!s) break;
      s.output = d.output ?? null;
      s.reusedFrom = str(d.from_run);
      s.completedSeq = event.seq;
      finish(s, "succeeded", event.at);
      break;
    case "step.waiting":
      if (!s) break;
      s.phase = "waiting";
      s.attempt = event.attempt ?? Math.max(1, s.attempt);
      s.waiting = waitingOf(d);
      s.wakeAt = timeOf(d.wake_at);
      s.input = (d.input as Record<string, Json>) ?? s.input;
      s.startedAt ??= event.at;
      break;
    case "signal.received": {
      const key = str(d.idempotency_key);
      const delivered = num(d.delivered_to);
      if (delivered === null) {
        state.signals.push({ seq: event.seq, name: String(d.name), data: d.data ?? null, at: event.at });
      }
      if (key !== null) {
        state.signalKeys.set(key, {
          bodyHash: str(d.body_hash) ?? "",
          answer: { delivered_to: delivered, buffered: delivered === null },
        });
      }
      break;
    }
    case "step.skipped":
      if (s) endStep(s, "skipped", event.at);
      break;
    case "step.cancelled":
      if (s) endStep(s, "cancelled", event.at);
      break;
    case "compensation.started": {
      state.compensation = {
        status: "running",
        ending: d.ending === "run.cancelled" ? "run.cancelled" : "run.failed",
        error: str(d.error) ?? "Run failed",
        order: [],
      };
      type Entry = { step_number: number; call?: number; tool_name: string; tool_input: Record<string, Json> };
      for (const entry of (d.steps as Entry[] | undefined) ?? []) {
        const target = state.steps.get(entry.step_number);
        const ref: TaskRef = { step: entry.step_number, kind: "compensate", index: entry.call ?? 0 };
        const owner = undoneBy(target, ref.index);
        if (!owner) continue;
        owner.compensation = newTask(ref, entry.tool_name, entry.tool_input);
        state.compensation.order.push(ref);
      }
      break;
    }
    case "compensation.step_skipped": {
      const owner = undoneBy(s, num(d.call) ?? 0);
      if (owner) owner.compensationSkipped = str(d.reason) ?? "no compensation";
      break;
    }
    case "compensation.completed":
    case "compensation.failed":
      if (state.compensation)
        state.compensation.status = event.type === "compensation.completed" ? "completed" : "failed";
      break;
    case "run.completed":
      state.status = "completed";
      state.result = d.result ?? null;
      state.completedAt = event.at;
      break;
    case "run.failed":
      state.status = "failed";
      state.error = str(d.error) ?? "Run failed";
      state.completedAt = event.at;
      state.startedAt ??= event.at;
      break;
    case "run.cancelled":
      state.status = "cancelled";
      state.error = str(d.error) ?? "Run cancelled";
      state.completedAt = event.at;
      break;
  }
}

/** The waiting object a `step.waiting` event carries as its data (the wire's `waiting`). */
function waitingOf(d: Record<string, Json>): WaitingInfo {
  const w: WaitingInfo = {
    kind: d.kind as WaitingInfo["kind"],
    since: String(d.since),
    until: str(d.until),
  };
  if (typeof d.message === "string") w.message = d.message;
  if (typeof d.name === "string") w.name = d.name;
  if (typeof d.callback_url === "string") w.callback_url = d.callback_url;
  return w;
}

/** What an agent turn produced: the model's tool calls, or its answer, and the tokens it cost. */
function turnOutput(d: Record<string, Json>): Json {
  return {
    tool_calls: d.tool_calls ?? null,
    answer: d.answer ?? null,
    tokens: d.tokens ?? 0,
    ...(typeof d.answer_bytes === "number" ? { answer_bytes: d.answer_bytes } : {}),
    ...(typeof d.calls_refused === "number" ? { calls_refused: d.calls_refused } : {}),
  };
}

function afterStepTransition(state: RunState, s: StepState, event: RunEvent): void {
  const d = event.data ?? {};
  if (event.type === "step.succeeded") {
    s.completedSeq = event.seq;
    s.waiting = null;
    s.wakeAt = null;
    const consumed = num(d.signal_seq);
    if (consumed !== null) state.signals = state.signals.filter((b) => b.seq !== consumed);
  } else if (event.type === "step.failed") {
    s.waiting = null;
    s.wakeAt = null;
  }
}

function afterTurnTransition(s: StepState, transition: string, event: RunEvent): void {
  if (!s.agent) return;
  if (transition === "dispatched") {
    // The first turn starts the step; its `attempts` count the turns. It carries the step's input
    // with its references resolved: what the loop runs with (`agentConfig`) and the execution log shows.
    s.phase = "running";
    s.startedAt ??= event.at;
    s.attempt = Math.max(s.attempt, event.data?.turn as number);
    const input = event.data?.input;
    if (input !== null && typeof input === "object" && !Array.isArray(input)) s.input = input;
  } else if (transition === "succeeded") {
    s.agent.tokens += num(event.data?.tokens) ?? 0;
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
    traceId: str(d.trace_id),
    requestId: str(d.request_id),
    origin: str(d.origin),
    rerunOf: (d.rerun_of as unknown as RerunOf | undefined) ?? null,
    status: "pending",
    plan: null,
    steps: new Map(),
    result: null,
    error: null,
    createdAt: created.at,
    startedAt: null,
    completedAt: null,
    seq: created.seq,
    signals: [],
    signalKeys: new Map(),
    compensation: null,
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

/** Every task of the run: its steps, their compensations, agent turns and calls and theirs. */
export function* allTasks(state: RunState): Generator<Task | StepState> {
  for (const s of state.steps.values()) {
    yield s;
    if (s.compensation) yield s.compensation;
    if (!s.agent) continue;
    yield* s.agent.turns;
    for (const c of s.agent.calls) {
      yield c;
      if (c.compensation) yield c.compensation;
    }
  }
}

/**
 * Parked: nothing in flight and at least one step waiting (a timer, a person, a signal). Such a
 * run holds no active-run slot; it counts toward the tenant's waiting runs instead.
 */
export function isParked(state: RunState): boolean {
  if (isFinished(state) || state.compensation) return false;
  let waiting = false;
  for (const t of allTasks(state)) {
    if (ACTIVE.has(t.phase)) return false;
    if (t.phase === "waiting") waiting = true;
  }
  return waiting;
}
