import type { Json } from "../contracts/common";
import type { EventType } from "../contracts/run";
import type { RunEvent } from "./events";

/**
 * A task is one piece of work carried out by attempts of a tool: a plan step, the compensation
 * that undoes a step, an agent step's model turn, or one of its tool calls. All of them share the
 * same machine — attempts with deadlines, retries with backoff, one accepted result per attempt,
 * queue or inline placement — and differ only in the names of their events.
 */
export type TaskKind = "step" | "compensate" | "turn" | "call";

export interface TaskRef {
  step: number;
  kind: TaskKind;
  /** The turn or call number (1, 2, …) of an agent's sub-task; 0 otherwise. */
  index: number;
}

export const stepRef = (step: number): TaskRef => ({ step, kind: "step", index: 0 });

/**
 * The `task` field of a queue message: absent for a step, else `compensate` (a step's
 * compensation), `compensate:N` (that of an agent's call N), `turn:N` or `call:N`.
 */
export function taskName(ref: TaskRef): string | undefined {
  if (ref.kind === "step") return undefined;
  if (ref.kind === "compensate") return ref.index === 0 ? "compensate" : `compensate:${ref.index}`;
  return `${ref.kind}:${ref.index}`;
}

export function parseTask(step: number, task: string | undefined): TaskRef | null {
  if (task === undefined) return stepRef(step);
  if (task === "compensate") return { step, kind: "compensate", index: 0 };
  const m = /^(turn|call|compensate):(\d{1,4})$/.exec(task);
  if (!m || (m[1] === "compensate" && Number(m[2]) === 0)) return null;
  return { step, kind: m[1] as "turn" | "call" | "compensate", index: Number(m[2]) };
}

/** The idempotency key a tool sees for a task: the same for every attempt and redelivery. */
export function idempotencyKey(runId: string, ref: TaskRef): string {
  if (ref.kind === "step") return `${runId}:${ref.step}`;
  if (ref.kind === "compensate") {
    return ref.index === 0 ? `${runId}:${ref.step}:compensate` : `${runId}:${ref.step}:${ref.index}:compensate`;
  }
  return ref.kind === "call" ? `${runId}:${ref.step}:${ref.index}` : `${runId}:${ref.step}:turn:${ref.index}`;
}

export const describeRef = (ref: TaskRef): string =>
  ref.kind === "step"
    ? `step ${ref.step}`
    : ref.kind === "compensate"
      ? ref.index === 0
        ? `compensation of step ${ref.step}`
        : `compensation of call ${ref.index} of step ${ref.step}`
      : `${ref.kind} ${ref.index} of step ${ref.step}`;

export type Transition = "dispatched" | "started" | "succeeded" | "failed" | "retry";

/** The event each transition of each kind of task is recorded as (docs/api.md names the wire ones). */
export const TASK_EVENTS: Record<TaskKind, Record<Transition, EventType>> = {
  step: {
    dispatched: "step.dispatched",
    started: "step.started",
    succeeded: "step.succeeded",
    failed: "step.failed",
    retry: "step.retry_scheduled",
  },
  compensate: {
    dispatched: "compensation.step_dispatched",
    started: "compensation.step_started",
    succeeded: "compensation.step_succeeded",
    failed: "compensation.step_failed",
    retry: "compensation.step_retry_scheduled",
  },
  turn: {
    dispatched: "agent.turn_dispatched",
    started: "agent.turn_started",
    succeeded: "agent.turn",
    failed: "agent.turn_failed",
    retry: "agent.turn_retry_scheduled",
  },
  call: {
    dispatched: "agent.call_dispatched",
    started: "agent.call_started",
    succeeded: "agent.call_succeeded",
    failed: "agent.call_failed",
    retry: "agent.call_retry_scheduled",
  },
};

const BY_TYPE = new Map<EventType, { kind: TaskKind; transition: Transition }>(
  Object.entries(TASK_EVENTS).flatMap(([kind, ts]) =>
    Object.entries(ts).map(([transition, type]) => [
      type,
      { kind: kind as TaskKind, transition: transition as Transition },
    ]),
  ),
);

/** Which task an event moves, and how; null for events that are not task transitions. */
export function transitionOf(event: RunEvent): { ref: TaskRef; transition: Transition } | null {
  const hit = BY_TYPE.get(event.type);
  if (!hit || event.step_number === undefined) return null;
  const d = event.data ?? {};
  // A compensation's events name the agent call it undoes (`call`); a step's own has none (0).
  const index = hit.kind === "turn" ? d.turn : hit.kind === "call" || hit.kind === "compensate" ? d.call : 0;
  return {
    ref: { step: event.step_number, kind: hit.kind, index: typeof index === "number" ? index : 0 },
    transition: hit.transition,
  };
}

/** How many attempts of one task may only wait (`FailureInfo.waited`) before they count against `max_attempts`. */
export const MAX_WAITS = 30;

/** Where a task is; a step adds `waiting` (a control wait) to these. */
export type TaskPhase = "pending" | "queued" | "running" | "backoff" | "succeeded" | "failed" | "skipped" | "cancelled";

/** Phases with an attempt in flight or about to be: they count against `max_parallel`. */
export const ACTIVE: ReadonlySet<string> = new Set(["queued", "running", "backoff"]);
export const DONE: ReadonlySet<string> = new Set(["succeeded", "failed", "skipped", "cancelled"]);

export interface Task {
  ref: TaskRef;
  tool: string;
  /** The input as planned (it may hold `{{steps.N.output}}` references). */
  template: Record<string, Json>;
  /** The input the current attempt runs with, once it started (references resolved). */
  input: Record<string, Json>;
  phase: TaskPhase;
  /** The current attempt (0 before the first dispatch). Only results for it are accepted. */
  attempt: number;
  /** Epoch ms by which the current attempt must start or report, else it is timed out. */
  deadlineAt: number | null;
  /** Epoch ms at which the next attempt may be dispatched. */
  retryAt: number | null;
  /** Attempts that only waited (`FailureInfo.waited`, such as `budget_busy`): they do not count against `max_attempts`. */
  waits: number;
  output: Json;
  error: string | null;
  startedAt: string | null;
  completedAt: string | null;
}

export function newTask(ref: TaskRef, tool: string, template: Record<string, Json>): Task {
  return {
    ref,
    tool,
    template,
    input: template,
    phase: "pending",
    attempt: 0,
    deadlineAt: null,
    retryAt: null,
    waits: 0,
    output: null,
    error: null,
    startedAt: null,
    completedAt: null,
  };
}

/** A time as event data holds it: ISO-8601, like every timestamp of the API. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * A time an event's data names: an ISO-8601 string, or epoch milliseconds as logs written before
 * 2026-12-03 hold them (a run's log is folded again after every restart).
 */
export const timeOf = (v: Json | undefined): number | null => {
  if (typeof v === "number") return v;
  const t = typeof v === "string" ? Date.parse(v) : Number.NaN;
  return Number.isNaN(t) ? null : t;
};

/** Ends a task (any phase): no deadline, no retry. */
export function finish(
  task: { phase: string; deadlineAt: number | null; retryAt: number | null; completedAt: string | null },
  phase: TaskPhase,
  at: string,
): void {
  task.phase = phase;
  task.deadlineAt = null;
  task.retryAt = null;
  if (phase !== "skipped") task.completedAt = at;
}

/**
 * Folds one transition into a task. `output` is what a success produced (events carry it under
 * `data.output`, except an agent turn, whose event data is the model's answer itself).
 */
export function applyTransition(task: Task, transition: Transition, event: RunEvent, output: Json): void {
  const d = event.data ?? {};
  switch (transition) {
    case "dispatched":
      task.phase = "queued";
      task.attempt = event.attempt ?? task.attempt + 1;
      task.deadlineAt = timeOf(d.deadline_at);
      task.retryAt = null;
      break;
    case "started":
      task.phase = "running";
      task.input = (d.input as Record<string, Json>) ?? task.input;
      task.deadlineAt = timeOf(d.deadline_at);
      task.startedAt ??= event.at;
      break;
    case "succeeded":
      task.output = output;
      task.error = null;
      finish(task, "succeeded", event.at);
      break;
    case "failed":
      task.error = typeof d.error === "string" ? d.error : "Failed";
      if (event.attempt !== undefined) task.attempt = Math.max(task.attempt, event.attempt);
      finish(task, "failed", event.at);
      break;
    case "retry":
      if (d.waited === true) task.waits += 1;
      task.phase = "backoff";
      task.error = typeof d.error === "string" ? d.error : task.error;
      task.deadlineAt = null;
      task.retryAt = timeOf(d.retry_at);
      break;
  }
}
