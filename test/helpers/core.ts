import type { Json } from "../../src/contracts/common";
import type { Plan, PlanStep } from "../../src/contracts/plan";
import type { RunOptions } from "../../src/contracts/run";
import { onDeadLetter, onResult, onStart, onTimeouts } from "../../src/run/attempts";
import { DEFAULT_GRACE, type DecideContext } from "../../src/run/context";
import { onCancel } from "../../src/run/decide";
import type { EventDraft, RunEvent } from "../../src/run/events";
import { initial, type RunState } from "../../src/run/state";
import { parseTask, type TaskRef } from "../../src/run/tasks";
import { transition } from "../../src/run/transition";
import { type Decision, onApprove, onCallback, onReject, onSignal } from "../../src/run/waiting";
import { defaultRegistry } from "../../src/tools/registry";
import { runInline } from "../../src/tools/run";
import type { AttemptOutcome } from "../../src/tools/types";

export const OPTIONS: RunOptions = { max_parallel: 8, step_timeout_ms: 1000, max_attempts: 3, on_failure: "fail_fast" };

export const step = (
  n: number,
  depends_on: number[] = [],
  tool = "calculator",
  tool_input?: Record<string, Json>,
): PlanStep => ({
  step_number: n,
  tool_name: tool,
  tool_input: tool_input ?? (tool === "calculator" ? { expression: `${n}` } : {}),
  reasoning: "",
  depends_on,
});

/** `type#step.attempt` (and `:task` for a compensation, turn or call), how the tests read event lists. */
export const label = (e: RunEvent): string => {
  const task =
    e.data?.turn !== undefined ? `:turn${e.data.turn}` : e.data?.call !== undefined ? `:call${e.data.call}` : "";
  return `${e.type}${e.step_number ? `#${e.step_number}` : ""}${e.attempt ? `.${e.attempt}` : ""}${task}`;
};

export interface HarnessOptions {
  options?: Partial<RunOptions>;
  /** Run pure tools inline, as production does (default false here: every attempt is driven by hand). */
  inline?: boolean;
  origin?: string | null;
}

/** A run driven through `transition` exactly as the coordinator drives it, keeping every event. */
export function harness(steps: PlanStep[], opts: HarnessOptions = {}) {
  let now = 1_000_000;
  let secrets = 0;
  const ctx = (): DecideContext => ({
    now,
    random: () => 0.5,
    secret: () => `secret${String(++secrets).padStart(20, "0")}`,
    registry: defaultRegistry,
    grace: DEFAULT_GRACE,
    inline: opts.inline ?? false,
    runInline: (grant) => runInline(defaultRegistry, grant),
    objectId: "a".repeat(64),
  });
  const created: RunEvent = {
    seq: 1,
    type: "run.created",
    at: new Date(now).toISOString(),
    data: {
      run_id: "r1",
      tenant: "t",
      prompt: "p",
      planner: "rules",
      options: { ...OPTIONS, ...opts.options },
      trace_id: null,
      origin: opts.origin === undefined ? "https://crane.test" : opts.origin,
    },
  };
  const state: RunState = initial(created);
  const log: RunEvent[] = [created];
  const plan: Plan = { plan_id: "p", planner: "explicit", final_goal: "g", steps };
  const run = (first: (s: RunState, c: DecideContext) => EventDraft[]) => {
    const events = transition(state, ctx(), first);
    log.push(...events);
    return events.map(label);
  };
  const decided = <A>(command: (s: RunState, c: DecideContext) => Decision<A>) => {
    let d: Decision<A> | null = null;
    const events = run((s, c) => {
      d = command(s, c);
      return d.ok ? d.drafts : [];
    });
    return { decision: d as unknown as Decision<A>, events };
  };
  const ref = (n: number, task?: string): TaskRef => parseTask(n, task) as TaskRef;
  const h = {
    state,
    log,
    ctx,
    plan: (extra: EventDraft[] = []) =>
      run(() => [{ type: "run.planned", data: { plan: plan as unknown as Json } }, ...extra]),
    start: (n: number, attempt = 1, task?: string) => run((s, c) => onStart(s, ref(n, task), attempt, c).drafts),
    grant: (n: number, attempt = 1, task?: string) => {
      let grant: ReturnType<typeof onStart>["grant"] = null;
      run((s, c) => {
        const d = onStart(s, ref(n, task), attempt, c);
        grant = d.grant;
        return d.drafts;
      });
      return grant as ReturnType<typeof onStart>["grant"];
    },
    finish: (n: number, attempt: number, outcome: AttemptOutcome, task?: string) =>
      run((s, c) => onResult(s, ref(n, task), attempt, outcome, c)),
    succeed: (n: number, output: unknown = n, attempt = 1, task?: string) => [
      ...h.start(n, attempt, task),
      ...h.finish(n, attempt, { ok: true, output: output as Json }, task),
    ],
    fail: (n: number, retryable: boolean, attempt = 1, task?: string) => [
      ...h.start(n, attempt, task),
      ...h.finish(
        n,
        attempt,
        { ok: false, error: { message: "boom", retryable, code: retryable ? "transient" : "invalid_input" } },
        task,
      ),
    ],
    deadLetter: (n: number, attempt: number) => run((s, c) => onDeadLetter(s, ref(n), attempt, "gone", c)),
    tick: (ms: number) => {
      now += ms;
      return run((s, c) => onTimeouts(s, c));
    },
    cancel: (compensate = false) => decided((s, c) => onCancel(s, "stop", compensate, c)),
    approve: (n: number, body = {}) => decided((s, c) => onApprove(s, n, body, "api", c)),
    reject: (n: number, reason?: string) => decided((s) => onReject(s, n, reason)),
    signal: (name: string, data: Json = null, key?: string) =>
      decided((s, c) =>
        onSignal(
          s,
          name,
          data,
          key ? { key, body: { hash: JSON.stringify(data), legacy: JSON.stringify(data) } } : null,
          c.now,
        ),
      ),
    callback: (token: string, body = {}) => decided((s, c) => onCallback(s, token, body, c)),
    now: () => now,
  };
  return h;
}
