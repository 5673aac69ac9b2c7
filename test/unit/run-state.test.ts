import { describe, expect, it } from "vitest";
import type { Plan } from "../../src/contracts/plan";
import { messageGrant, nextWake, onResult, onStart } from "../../src/run/attempts";
import { backoffDelay } from "../../src/run/backoff";
import { DEFAULT_GRACE } from "../../src/run/context";
import { reduce } from "../../src/run/state";
import { MAX_WAITS, parseTask, type TaskRef } from "../../src/run/tasks";
import { transition } from "../../src/run/transition";
import { toRun } from "../../src/run/view";
import type { AttemptOutcome } from "../../src/tools/types";
import { harness, label, OPTIONS, step } from "../helpers/core";

const POLICY = { max_attempts: 3, base_delay_ms: 200, factor: 2, max_delay_ms: 10_000 };

describe("run state: a fold of its events", () => {
  it("dispatches independent steps together and the join after both", () => {
    const h = harness([step(1), step(2), step(3, [1, 2])]);
    expect(h.plan()).toEqual(["run.planned", "step.dispatched#1.1", "step.dispatched#2.1"]);
    expect(h.succeed(1)).toEqual(["step.started#1.1", "step.succeeded#1.1"]);
    expect(h.succeed(2)).toEqual(["step.started#2.1", "step.succeeded#2.1", "step.dispatched#3.1"]);
    expect(h.succeed(3, 42)).toEqual(["step.started#3.1", "step.succeeded#3.1", "run.completed"]);
    expect(toRun(h.state)).toMatchObject({ status: "completed", result: 42, error: null });
  });

  it("rebuilds exactly the same state from the log", () => {
    const h = harness([step(1), step(2, [1])]);
    h.plan();
    h.fail(1, true);
    h.tick(10_000);
    h.succeed(1, 7, 2);
    h.succeed(2, 8);
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("writes times in event data as ISO-8601, and folds a log written with epoch milliseconds the same", () => {
    const h = harness([step(1), step(2, [1])]);
    h.plan();
    h.fail(1, true);
    const times = h.log.flatMap((e) =>
      ["deadline_at", "retry_at"].filter((k) => e.data?.[k] !== undefined).map((k) => e.data?.[k]),
    );
    expect(times.length).toBeGreaterThanOrEqual(2);
    for (const t of times) expect(t).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    // A run's log from before 2026-12-03 holds epoch milliseconds; after a restart it folds alike.
    const older = h.log.map((e) => ({
      ...e,
      ...(e.data
        ? {
            data: Object.fromEntries(
              Object.entries(e.data).map(([k, v]) => [
                k,
                k.endsWith("_at") && k !== "woke_at" ? Date.parse(v as string) : v,
              ]),
            ),
          }
        : {}),
    }));
    expect(reduce(older)).toEqual(reduce(h.log));
    expect(nextWake(reduce(older) as NonNullable<ReturnType<typeof reduce>>)).toBe(nextWake(h.state));
  });

  it("never has more than max_parallel steps in flight", () => {
    const h = harness(
      [1, 2, 3, 4, 5].map((n) => step(n)),
      { options: { max_parallel: 2 } },
    );
    expect(h.plan()).toEqual(["run.planned", "step.dispatched#1.1", "step.dispatched#2.1"]);
    expect(h.succeed(1)).toEqual(["step.started#1.1", "step.succeeded#1.1", "step.dispatched#3.1"]);
  });

  it("ignores a duplicate start and a stale or repeated result", () => {
    const h = harness([step(1)]);
    h.plan();
    h.start(1);
    expect(h.start(1)).toEqual(["step.ignored#1.1"]);
    expect(h.finish(1, 2, { ok: true, output: 1 })).toEqual(["step.ignored#1.2"]);
    expect(h.finish(1, 1, { ok: true, output: 1 })).toEqual(["step.succeeded#1.1", "run.completed"]);
    expect(h.finish(1, 1, { ok: true, output: 999 })).toEqual(["step.ignored#1.1"]);
    expect(toRun(h.state).result).toBe(1);
    expect(h.log.filter((e) => e.type === "step.ignored").every((e) => e.data?.ignored === true)).toBe(true);
  });

  it("retries a retryable failure after a jittered backoff, then succeeds", () => {
    const h = harness([step(1)]);
    h.plan();
    expect(h.fail(1, true)).toEqual(["step.started#1.1", "step.retry_scheduled#1.1"]);
    const scheduled = h.log.at(-1);
    expect(scheduled?.data).toMatchObject({ delay_ms: 100, reason: "transient", error: "boom" });
    expect(nextWake(h.state)).toBe(h.now() + 100);
    expect(h.tick(50)).toEqual([]);
    expect(h.tick(50)).toEqual(["step.dispatched#1.2"]);
    expect(h.succeed(1, 5, 2)).toEqual(["step.started#1.2", "step.succeeded#1.2", "run.completed"]);
    expect(toRun(h.state).execution_log[0]).toMatchObject({ attempts: 2, status: "succeeded", output: 5 });
  });

  it("an attempt that only waited for the tenant's LLM budget does not count against max_attempts", () => {
    const h = harness([step(1)], { options: { max_attempts: 1 } });
    h.plan();
    const busy: AttemptOutcome = {
      ok: false,
      error: { message: "budget_busy: held", retryable: true, code: "budget_busy", retry_after_ms: 1000, waited: true },
    };
    let attempt = 1;
    // Up to MAX_WAITS waits are retried, whatever max_attempts says…
    for (; attempt <= MAX_WAITS; attempt++) {
      h.start(1, attempt);
      expect(h.finish(1, attempt, busy)).toEqual([`step.retry_scheduled#1.${attempt}`]);
      expect(h.tick(3_600_000)).toEqual([`step.dispatched#1.${attempt + 1}`]);
    }
    expect(h.state.steps.get(1)?.waits).toBe(MAX_WAITS);
    // …and the fold of the log says the same.
    expect(reduce(h.log)?.steps.get(1)?.waits).toBe(MAX_WAITS);
    // A real failure then counts as the step's one attempt.
    expect(h.fail(1, true, attempt)).toEqual([`step.started#1.${attempt}`, `step.failed#1.${attempt}`, "run.failed"]);
  });

  it("a budget wait beyond MAX_WAITS counts like any failure", () => {
    const h = harness([step(1)], { options: { max_attempts: 1 } });
    h.plan();
    const busy: AttemptOutcome = {
      ok: false,
      error: { message: "budget_busy: held", retryable: true, code: "budget_busy", waited: true },
    };
    for (let attempt = 1; attempt <= MAX_WAITS; attempt++) {
      h.start(1, attempt);
      h.finish(1, attempt, busy);
      h.tick(3_600_000);
    }
    h.start(1, MAX_WAITS + 1);
    expect(h.finish(1, MAX_WAITS + 1, busy)).toEqual([`step.failed#1.${MAX_WAITS + 1}`, "run.failed"]);
  });

  it("fails a step at once on a non-retryable error and fails the run fast", () => {
    const h = harness([step(1), step(2), step(3, [1])]);
    h.plan();
    h.start(2);
    expect(h.fail(1, false)).toEqual([
      "step.started#1.1",
      "step.failed#1.1",
      "step.cancelled#2.1",
      "step.skipped#3",
      "run.failed",
    ]);
    const run = toRun(h.state);
    expect(run.status).toBe("failed");
    expect(run.error).toBe("Step 1 (calculator) failed: boom");
    expect(run.execution_log.map((e) => e.status)).toEqual(["failed", "cancelled", "skipped"]);
    expect(run.execution_log[0]?.success).toBe(false);
    expect(h.finish(2, 1, { ok: true, output: 2 })).toEqual(["step.ignored#2.1"]);
  });

  it("gives up after max_attempts", () => {
    const h = harness([step(1)], { options: { max_attempts: 2 } });
    h.plan();
    h.fail(1, true);
    h.tick(1000);
    expect(h.fail(1, true, 2)).toEqual(["step.started#1.2", "step.failed#1.2", "run.failed"]);
  });

  it("with on_failure=continue skips only the failed step's dependants", () => {
    const h = harness([step(1), step(2), step(3, [1]), step(4, [2])], { options: { on_failure: "continue" } });
    h.plan();
    expect(h.fail(1, false)).toEqual(["step.started#1.1", "step.failed#1.1", "step.skipped#3"]);
    expect(h.succeed(2)).toEqual(["step.started#2.1", "step.succeeded#2.1", "step.dispatched#4.1"]);
    expect(h.succeed(4)).toEqual(["step.started#4.1", "step.succeeded#4.1", "run.failed"]);
    expect(toRun(h.state).error).toBe("1 step failed: step 1 (calculator): boom");
    expect(h.log.at(-1)?.data?.failed_steps).toEqual([1]);
  });

  it("times out an attempt whose consumer never reported, then retries it", () => {
    const h = harness([step(1)]);
    h.plan();
    h.start(1);
    expect(h.tick(1000)).toEqual([]);
    expect(h.tick(5_000)).toEqual(["step.retry_scheduled#1.1"]);
    expect(h.log.at(-1)?.data?.reason).toBe("timeout");
  });

  it("times out a message that was never delivered", () => {
    const h = harness([step(1)]);
    h.plan();
    expect(h.tick(OPTIONS.step_timeout_ms + DEFAULT_GRACE.dispatchMs)).toEqual(["step.retry_scheduled#1.1"]);
  });

  it("fails a step whose reference cannot be resolved, without retrying", () => {
    const h = harness([step(1), { ...step(2, [1]), tool_input: { expression: "{{steps.1.output.missing}}" } }]);
    h.plan();
    h.succeed(1, 3);
    expect(h.start(2)).toEqual(["step.started#2.1", "step.failed#2.1", "run.failed"]);
    expect(toRun(h.state).error).toMatch(/does not exist in step 1's output/);
  });

  it("resolves references into the started input", () => {
    const h = harness([step(1), { ...step(2, [1]), tool_input: { expression: "{{steps.1.output}} * 2" } }]);
    h.plan();
    h.succeed(1, 21);
    h.start(2);
    expect(toRun(h.state).execution_log[1]?.tool_input).toEqual({ expression: "21 * 2" });
  });

  it("cancels running steps and skips waiting ones", () => {
    const h = harness([step(1), step(2, [1])]);
    h.plan();
    h.start(1);
    expect(h.cancel().events).toEqual(["step.cancelled#1.1", "step.skipped#2", "run.cancelled"]);
    expect(toRun(h.state)).toMatchObject({ status: "cancelled", error: "stop", result: null });
    expect(nextWake(h.state)).toBeNull();
  });
});

describe("inline pure tools", () => {
  it("start and finish inside the same transition as their dispatch, with no queue message", () => {
    const h = harness(
      [
        step(1, [], "calculator", { expression: "6 * 7" }),
        step(2, [1], "calculator", { expression: "{{steps.1.output}} * 10" }),
        step(3, [], "sleep", { ms: 5 }),
      ],
      { inline: true },
    );
    const events = transition(h.state, h.ctx(), () => [{ type: "run.planned", data: { plan: plan3 as never } }]);
    expect(events.map((e) => `${label(e)}${e.data?.inline ? " inline" : ""}`)).toEqual([
      "run.planned",
      "step.dispatched#1.1 inline",
      "step.dispatched#3.1",
      "step.started#1.1",
      "step.succeeded#1.1",
      "step.dispatched#2.1 inline",
      "step.started#2.1",
      "step.succeeded#2.1",
    ]);
    expect(toRun(h.state).execution_log.map((e) => e.output)).toEqual([42, 420, null]);
    expect(reduce([...h.log, ...events])).toEqual(h.state);
  });
});

const plan3: Plan = {
  plan_id: "p",
  planner: "explicit",
  final_goal: "g",
  steps: [
    step(1, [], "calculator", { expression: "6 * 7" }),
    step(2, [1], "calculator", { expression: "{{steps.1.output}} * 10" }),
    step(3, [], "sleep", { ms: 5 }),
  ],
};

describe("backoff", () => {
  it("grows exponentially up to the cap, scaled by the jitter", () => {
    expect([1, 2, 3, 4].map((a) => backoffDelay(POLICY, a, () => 0.999999))).toEqual([199, 399, 799, 1599]);
    expect(backoffDelay(POLICY, 20, () => 0.5)).toBe(5000);
    expect(backoffDelay(POLICY, 3, () => 0)).toBe(0);
  });
});

describe("a grant carried by a queue message (pure tools through the queue)", () => {
  const ref = (n: number) => parseTask(n, undefined) as TaskRef;

  it("is given for a side-effect-free step's queued attempt, with its references resolved, and for nothing else", () => {
    const h = harness([
      step(1),
      step(2, [1], "calculator", { expression: "{{steps.1.output}} * 2" }),
      step(3, [], "sleep", { ms: 5 }),
      step(4, [], "todo_store", { action: "add", text: "t" }),
    ]);
    h.plan();
    expect(messageGrant(h.state, ref(1), 1, h.ctx())).toMatchObject({
      tool_name: "calculator",
      input: { expression: "1" },
      timeout_ms: OPTIONS.step_timeout_ms,
      idempotency_key: expect.stringContaining("r1"),
    });
    // A sleep changes nothing outside its output either; a todo write does: its consumer asks first.
    expect(messageGrant(h.state, ref(3), 1, h.ctx())?.input).toEqual({ ms: 5 });
    expect(messageGrant(h.state, ref(4), 1, h.ctx())).toBeNull();
    // Step 2 is not dispatched yet; once it is, its input names step 1's output.
    expect(messageGrant(h.state, ref(2), 1, h.ctx())).toBeNull();
    h.succeed(1, 21);
    expect(messageGrant(h.state, ref(2), 1, h.ctx())?.input).toEqual({ expression: "21 * 2" });
    // Once started, the attempt is no longer queued: nothing to grant.
    h.start(2);
    expect(messageGrant(h.state, ref(2), 1, h.ctx())).toBeNull();
  });

  it("is not given for an input too large for a message", () => {
    const h = harness([step(1, [], "text", { operation: "uppercase", text: "x".repeat(40_000) })]);
    h.plan();
    expect(messageGrant(h.state, ref(1), 1, h.ctx())).toBeNull();
  });

  it("starts and finishes the attempt in one transition when its report comes", () => {
    const h = harness([step(1), step(2, [1])]);
    h.plan();
    const events = transition(
      h.state,
      h.ctx(),
      (s, c) => onStart(s, ref(1), 1, c).drafts,
      (s, c) => onResult(s, ref(1), 1, { ok: true, output: 5 }, c),
    );
    expect(events.map(label)).toEqual(["step.started#1.1", "step.succeeded#1.1", "step.dispatched#2.1"]);
  });
});
