import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Json } from "../../src/contracts/common";
import type { Plan, PlanStep } from "../../src/contracts/plan";
import type { ExecutionLogEntry, StepStatus } from "../../src/contracts/run";
import { downstreamOf, rerunPlanInput, reusableOutputs } from "../../src/plan/rerun";
import { nextWake } from "../../src/run/attempts";
import { newestFirst } from "../../src/run/compensation";
import type { RunEvent } from "../../src/run/events";
import { reduce } from "../../src/run/state";
import { idempotencyKey, parseTask, type TaskRef, taskName } from "../../src/run/tasks";
import { toRun } from "../../src/run/view";
import { harness, step } from "../helpers/core";

// ---------------------------------------------------------------------------------------------
// Random DAGs and executions of them
// ---------------------------------------------------------------------------------------------

interface Dag {
  /** Step numbers in a topological order (dependencies first); the numbers themselves are shuffled. */
  numbers: number[];
  /** step number → the step numbers it depends on. */
  deps: Map<number, number[]>;
}

/** A random DAG of 1–12 steps: step i may depend on any earlier one; labels are random, so step_number order is not topological. */
const dagArb: fc.Arbitrary<Dag> = fc
  .integer({ min: 1, max: 12 })
  .chain((n) =>
    fc.tuple(
      fc.uniqueArray(fc.integer({ min: 1, max: 200 }), { minLength: n, maxLength: n }),
      fc.array(fc.array(fc.boolean(), { minLength: n, maxLength: n }), { minLength: n, maxLength: n }),
    ),
  )
  .map(([numbers, edges]) => {
    const deps = new Map<number, number[]>();
    numbers.forEach((n, i) => {
      deps.set(
        n,
        numbers.filter((_, j) => j < i && edges[i]?.[j] === true),
      );
    });
    return { numbers, deps };
  });

/** Every step that `n` depends on, directly or not. */
function ancestors(dag: Dag, n: number): Set<number> {
  const seen = new Set<number>();
  const stack = [...(dag.deps.get(n) ?? [])];
  while (stack.length > 0) {
    const d = stack.pop() as number;
    if (seen.has(d)) continue;
    seen.add(d);
    stack.push(...(dag.deps.get(d) ?? []));
  }
  return seen;
}

/** What the undo order sees of a succeeded step. */
interface Undoable {
  step_number: number;
  completedSeq: number;
  depends_on: readonly number[];
}

/** The step numbers in the order the run's compensation undoes them (`newestFirst`, as `startCompensation` orders). */
const compensationOrder = (steps: readonly Undoable[]): number[] => newestFirst(steps).map((s) => s.step_number);

/**
 * Simulates execution: at each point one of the ready steps (all dependencies completed) completes,
 * chosen by `picks`; `stopAfter` steps complete (the run failed or was cancelled then). Sequence
 * numbers grow with random gaps (other events come between successes).
 */
function execute(dag: Dag, picks: number[], gaps: number[], stopAfter: number): Undoable[] {
  const done: Undoable[] = [];
  const completed = new Set<number>();
  let seq = 3;
  for (let k = 0; k < stopAfter; k++) {
    const ready = dag.numbers.filter(
      (n) => !completed.has(n) && (dag.deps.get(n) ?? []).every((d) => completed.has(d)),
    );
    if (ready.length === 0) break;
    const n = ready[(picks[k] ?? 0) % ready.length] as number;
    seq += 1 + (gaps[k] ?? 0);
    completed.add(n);
    done.push({ step_number: n, completedSeq: seq, depends_on: dag.deps.get(n) ?? [] });
  }
  return done;
}

const executionArb = dagArb.chain((dag) =>
  fc.record({
    dag: fc.constant(dag),
    picks: fc.array(fc.nat(), { minLength: dag.numbers.length, maxLength: dag.numbers.length }),
    gaps: fc.array(fc.nat({ max: 5 }), { minLength: dag.numbers.length, maxLength: dag.numbers.length }),
    stopAfter: fc.integer({ min: 0, max: dag.numbers.length }),
  }),
);

describe("compensationOrder: dependants are undone before what they depend on, newest success first", () => {
  it("undoes every succeeded step exactly once, each dependant before its dependencies, newest first (random DAGs and completion orders)", () => {
    fc.assert(
      fc.property(executionArb, ({ dag, picks, gaps, stopAfter }) => {
        const succeeded = execute(dag, picks, gaps, stopAfter);
        // The input order must not matter: give it shuffled by step number.
        const order = compensationOrder([...succeeded].sort((a, b) => a.step_number - b.step_number));
        expect([...order].sort((a, b) => a - b)).toEqual(succeeded.map((s) => s.step_number).sort((a, b) => a - b));
        const position = new Map(order.map((n, i) => [n, i]));
        for (const s of succeeded) {
          for (const d of ancestors(dag, s.step_number)) {
            // A succeeded step's dependencies all succeeded before it.
            expect(position.has(d)).toBe(true);
            expect(position.get(s.step_number) as number).toBeLessThan(position.get(d) as number);
          }
        }
        const seqOf = new Map(succeeded.map((s) => [s.step_number, s.completedSeq]));
        for (let i = 1; i < order.length; i++) {
          expect(seqOf.get(order[i - 1] as number) as number).toBeGreaterThan(seqOf.get(order[i] as number) as number);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("undoes a diamond's join first and its root last, the branches newest first", () => {
    // 1 → (2, 3) → 4; the branches completed 3 then 2.
    const order = compensationOrder([
      { step_number: 1, completedSeq: 5, depends_on: [] },
      { step_number: 3, completedSeq: 8, depends_on: [1] },
      { step_number: 2, completedSeq: 11, depends_on: [1] },
      { step_number: 4, completedSeq: 14, depends_on: [2, 3] },
    ]);
    expect(order).toEqual([4, 2, 3, 1]);
  });

  it("interleaves independent branches by completion time alone", () => {
    // Chains 1 → 2 and 3 → 4, completed 1, 3, 4, 2.
    const order = compensationOrder([
      { step_number: 1, completedSeq: 4, depends_on: [] },
      { step_number: 3, completedSeq: 6, depends_on: [] },
      { step_number: 4, completedSeq: 9, depends_on: [3] },
      { step_number: 2, completedSeq: 12, depends_on: [1] },
    ]);
    expect(order).toEqual([2, 4, 3, 1]);
  });

  it("undoes nothing when nothing succeeded", () => {
    expect(compensationOrder([])).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Reruns: which steps keep their output
// ---------------------------------------------------------------------------------------------

const planOf = (dag: Dag): Plan => ({
  plan_id: "p",
  planner: "explicit",
  final_goal: "g",
  steps: [...dag.numbers]
    .sort((a, b) => a - b)
    .map((n) => ({
      step_number: n,
      tool_name: "calculator",
      tool_input: { expression: `${n}` },
      reasoning: "",
      depends_on: [...(dag.deps.get(n) ?? [])].sort((a, b) => a - b),
    })),
});

const logOf = (plan: Plan, statuses: StepStatus[]): ExecutionLogEntry[] =>
  plan.steps.map((s, i) => {
    const status = statuses[i % statuses.length] ?? "succeeded";
    return {
      step_number: s.step_number,
      tool_name: s.tool_name,
      tool_input: s.tool_input,
      status,
      success: status === "succeeded" ? true : status === "failed" ? false : null,
      output: status === "succeeded" ? { out: s.step_number } : null,
      error: null,
      attempts: 1,
      started_at: null,
      completed_at: null,
      duration_ms: null,
    };
  });

const rerunArb = dagArb.chain((dag) =>
  fc.record({
    dag: fc.constant(dag),
    statuses: fc.array(fc.constantFrom<StepStatus>("succeeded", "succeeded", "failed", "skipped", "cancelled"), {
      minLength: 1,
      maxLength: dag.numbers.length,
    }),
    fromStep: fc.option(fc.constantFrom(...dag.numbers), { nil: null }),
    overridden: fc.subarray(dag.numbers),
  }),
);

describe("reruns: downstreamOf and reusableOutputs", () => {
  it("downstreamOf holds the roots and exactly the steps that depend on one of them, directly or not", () => {
    fc.assert(
      fc.property(
        dagArb.chain((dag) => fc.record({ dag: fc.constant(dag), roots: fc.subarray(dag.numbers) })),
        ({ dag, roots }) => {
          const down = downstreamOf(planOf(dag), roots);
          const expected = dag.numbers.filter(
            (n) => roots.includes(n) || [...ancestors(dag, n)].some((a) => roots.includes(a)),
          );
          expect([...down].sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reuses a step only when it succeeded and is neither from_step, nor overridden, nor downstream of one; and reuses every such step with its output", () => {
    fc.assert(
      fc.property(rerunArb, ({ dag, statuses, fromStep, overridden }) => {
        const plan = planOf(dag);
        const log = logOf(plan, statuses);
        const reused = reusableOutputs(plan, log, fromStep, overridden);
        const roots = [...(fromStep === null ? [] : [fromStep]), ...overridden];
        const rerun = (n: number) => roots.includes(n) || [...ancestors(dag, n)].some((a) => roots.includes(a));
        for (const entry of log) {
          const key = String(entry.step_number);
          if (entry.status === "succeeded" && !rerun(entry.step_number)) {
            expect(reused[key], `step ${key} should be reused`).toEqual(entry.output);
          } else {
            expect(key in reused, `step ${key} must run again`).toBe(false);
          }
        }
        expect(Object.keys(reused).length).toBe(
          log.filter((e) => e.status === "succeeded" && !rerun(e.step_number)).length,
        );
      }),
      { numRuns: 500 },
    );
  });

  it("without from_step or overrides reuses every success, so only what did not succeed runs again", () => {
    const plan = planOf({
      numbers: [1, 2, 3],
      deps: new Map([
        [1, []],
        [2, [1]],
        [3, [2]],
      ]),
    });
    const log = logOf(plan, ["succeeded", "failed", "skipped"]);
    expect(reusableOutputs(plan, log, null, [])).toEqual({ "1": { out: 1 } });
  });

  it("rerunPlanInput applies tool_inputs and names a from_step or override key that is not a step", () => {
    const plan = planOf({
      numbers: [1, 2],
      deps: new Map([
        [1, []],
        [2, [1]],
      ]),
    });
    const ok = rerunPlanInput(plan, { from_step: 2, tool_inputs: { "1": { expression: "40 + 2" } } });
    expect(ok.issues).toEqual([]);
    expect(ok.input.steps.map((s) => s.tool_input)).toEqual([{ expression: "40 + 2" }, { expression: "2" }]);
    const bad = rerunPlanInput(plan, { from_step: 9, tool_inputs: { "7": { expression: "1" } } });
    expect(bad.issues.map((i) => i.path).sort()).toEqual(["from_step", "tool_inputs.7"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Decisions: the compensation phase driven exactly as the coordinator drives it
// ---------------------------------------------------------------------------------------------

const add = (n: number, text: string, depends_on: number[] = []): PlanStep => ({
  ...step(n, depends_on, "todo_store", { action: "add", text }),
});
const todo = (id: string) => ({ todo: { id, text: id, completed: false, created_at: "t", completed_at: null } });
const deleted = (id: string) => ({ deleted: true, todo_id: id });

const types = (h: { log: RunEvent[] }, prefix: string) =>
  h.log.filter((e) => e.type.startsWith(prefix)).map((e) => `${e.type}#${e.step_number ?? ""}`);

describe("compensation decisions (pure core, as the coordinator runs them)", () => {
  it("undoes a todo saga newest first after a step fails for good, then fails the run", () => {
    const h = harness([add(1, "a"), add(2, "b", [1]), step(3, [2])], { options: { on_failure: "compensate" } });
    h.plan();
    h.succeed(1, todo("t1"));
    h.succeed(2, todo("t2"));
    expect(h.fail(3, false)).toEqual([
      "step.started#3.1",
      "step.failed#3.1",
      "compensation.started",
      "compensation.step_dispatched#2.1",
    ]);
    // While compensating the run is still running, and says what it is undoing.
    const during = toRun(h.state);
    expect(during.status).toBe("running");
    expect(during.completed_at).toBeNull();
    expect(during.compensation).toMatchObject({
      status: "running",
      steps: [
        { step_number: 2, tool_name: "todo_store", status: "pending" },
        { step_number: 1, tool_name: "todo_store", status: "pending" },
      ],
    });
    const grant = h.grant(2, 1, "compensate");
    expect(grant).toMatchObject({
      tool_name: "todo_store",
      input: { action: "delete", todo_id: "t2" },
      idempotency_key: "r1:2:compensate",
    });
    expect(h.finish(2, 1, { ok: true, output: deleted("t2") }, "compensate")).toEqual([
      "compensation.step_succeeded#2.1",
      "compensation.step_dispatched#1.1",
    ]);
    expect(h.succeed(1, deleted("t1"), 1, "compensate")).toEqual([
      "compensation.step_started#1.1",
      "compensation.step_succeeded#1.1",
      "compensation.completed",
      "run.failed",
    ]);
    const run = toRun(h.state);
    expect(run.status).toBe("failed");
    expect(run.error).toBe("Step 3 (calculator) failed: boom");
    expect(run.compensation).toEqual({
      status: "completed",
      steps: [
        {
          step_number: 2,
          tool_name: "todo_store",
          tool_input: { action: "delete", todo_id: "t2", missing_ok: true },
          status: "succeeded",
          output: deleted("t2"),
          error: null,
          attempts: 1,
        },
        {
          step_number: 1,
          tool_name: "todo_store",
          tool_input: { action: "delete", todo_id: "t1", missing_ok: true },
          status: "succeeded",
          output: deleted("t1"),
          error: null,
          attempts: 1,
        },
      ],
    });
    // The original steps keep their own outcome.
    expect(run.execution_log.map((e) => e.status)).toEqual(["succeeded", "succeeded", "failed"]);
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("undoes a complete with reopen", () => {
    const h = harness(
      [
        add(1, "a"),
        step(2, [1], "todo_store", { action: "complete", todo_id: "{{steps.1.output.todo.id}}" }),
        step(3, [2]),
      ],
      { options: { on_failure: "compensate" } },
    );
    h.plan();
    h.succeed(1, todo("t1"));
    h.succeed(2, { todo: { ...todo("t1").todo, completed: true } });
    h.fail(3, false);
    expect(h.grant(2, 1, "compensate")?.input).toEqual({ action: "reopen", todo_id: "t1" });
  });

  it("cancels running steps, skips pending ones and starts no new step once compensating", () => {
    const h = harness([add(1, "a"), step(2), step(3, [1]), step(4, [2])], { options: { on_failure: "compensate" } });
    h.plan();
    h.succeed(1, todo("t1")); // dispatches 3
    h.start(3);
    expect(h.fail(2, false)).toEqual([
      "step.started#2.1",
      "step.failed#2.1",
      "step.cancelled#3.1",
      "step.skipped#4",
      "compensation.started",
      "compensation.step_dispatched#1.1",
    ]);
    // A cancelled step's late result changes nothing.
    expect(h.finish(3, 1, { ok: true, output: 3 })).toEqual(["step.ignored#3.1"]);
    h.succeed(1, deleted("t1"), 1, "compensate");
    expect(h.log.filter((e) => e.type === "step.dispatched").map((e) => e.step_number)).toEqual([1, 2, 3]);
    expect(toRun(h.state).execution_log.map((e) => e.status)).toEqual(["succeeded", "failed", "cancelled", "skipped"]);
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("undoes a diamond: the join's dependants first, the branches newest first, the root last", () => {
    // 1 → (2, 3) → 4 → 5 fails. Every step is a todo add so that each has a compensation.
    const h = harness(
      [
        add(1, "a"),
        { ...add(2, "b", [1]), compensate: { tool_name: "calculator", tool_input: { expression: "2" } } },
        { ...add(3, "c", [1]), compensate: { tool_name: "calculator", tool_input: { expression: "3" } } },
        add(4, "d", [2, 3]),
        step(5, [4]),
      ],
      { options: { on_failure: "compensate" } },
    );
    h.plan();
    h.succeed(1, todo("t1"));
    // The todo writes are ordered by step number (one resource) only when the plan is validated;
    // these hand-made steps run 2 and 3 in parallel, completing 3 first.
    h.succeed(3, todo("t3"));
    h.succeed(2, todo("t2"));
    h.succeed(4, todo("t4"));
    h.fail(5, false);
    const undone: number[] = [];
    for (;;) {
      const next = h.log.at(-1);
      if (next?.type !== "compensation.step_dispatched") break;
      undone.push(next.step_number as number);
      h.succeed(next.step_number as number, "undone", 1, "compensate");
    }
    expect(undone).toEqual([4, 2, 3, 1]);
    expect(toRun(h.state).compensation?.steps.map((s) => s.step_number)).toEqual([4, 2, 3, 1]);
    expect(h.log.at(-1)?.type).toBe("run.failed");
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("records a succeeded step without a compensation as skipped, in the events and in the Run", () => {
    const h = harness([step(1), add(2, "b", [1]), step(3, [2])], { options: { on_failure: "compensate" } });
    h.plan();
    h.succeed(1, 1);
    h.succeed(2, todo("t2"));
    expect(h.fail(3, false)).toEqual([
      "step.started#3.1",
      "step.failed#3.1",
      "compensation.started",
      "compensation.step_skipped#1",
      "compensation.step_dispatched#2.1",
    ]);
    h.succeed(2, deleted("t2"), 1, "compensate");
    const run = toRun(h.state);
    expect(run.compensation?.status).toBe("completed");
    expect(run.compensation?.steps).toEqual([
      expect.objectContaining({ step_number: 2, status: "succeeded" }),
      expect.objectContaining({ step_number: 1, tool_name: "calculator", status: "skipped", attempts: 0 }),
    ]);
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("ends a run whose succeeded steps have no compensation right after recording them skipped", () => {
    const h = harness([step(1), step(2, [1])], { options: { on_failure: "compensate" } });
    h.plan();
    h.succeed(1, 1);
    expect(h.fail(2, false)).toEqual([
      "step.started#2.1",
      "step.failed#2.1",
      "compensation.started",
      "compensation.step_skipped#1",
      "compensation.completed",
      "run.failed",
    ]);
    expect(toRun(h.state).compensation).toMatchObject({
      status: "completed",
      steps: [{ step_number: 1, status: "skipped" }],
    });
  });

  it("fails the run at once, with no compensation, when nothing had succeeded", () => {
    const h = harness([add(1, "a"), step(2, [1])], { options: { on_failure: "compensate" } });
    h.plan();
    expect(h.fail(1, false)).toEqual(["step.started#1.1", "step.failed#1.1", "step.skipped#2", "run.failed"]);
    expect(toRun(h.state)).toMatchObject({ status: "failed", compensation: null });
  });

  it("does not compensate under fail_fast", () => {
    const h = harness([add(1, "a"), step(2, [1])]);
    h.plan();
    h.succeed(1, todo("t1"));
    expect(h.fail(2, false)).toEqual(["step.started#2.1", "step.failed#2.1", "run.failed"]);
    expect(toRun(h.state).compensation).toBeNull();
  });

  it("keeps undoing the others when one compensation fails for good, and leaves compensation.status failed", () => {
    const h = harness([add(1, "a"), add(2, "b", [1]), add(3, "c", [2]), step(4, [3])], {
      options: { on_failure: "compensate" },
    });
    h.plan();
    h.succeed(1, todo("t1"));
    h.succeed(2, todo("t2"));
    h.succeed(3, todo("t3"));
    h.fail(4, false);
    h.succeed(3, deleted("t3"), 1, "compensate");
    expect(h.fail(2, false, 1, "compensate")).toEqual([
      "compensation.step_started#2.1",
      "compensation.step_failed#2.1",
      "compensation.step_dispatched#1.1",
    ]);
    expect(h.succeed(1, deleted("t1"), 1, "compensate")).toEqual([
      "compensation.step_started#1.1",
      "compensation.step_succeeded#1.1",
      "compensation.failed",
      "run.failed",
    ]);
    const failed = h.log.find((e) => e.type === "compensation.failed");
    expect(failed?.data).toMatchObject({ failed_steps: [2] });
    const run = toRun(h.state);
    expect(run.status).toBe("failed");
    expect(run.compensation).toMatchObject({
      status: "failed",
      steps: [
        { step_number: 3, status: "succeeded" },
        { step_number: 2, status: "failed", error: "boom", attempts: 1 },
        { step_number: 1, status: "succeeded" },
      ],
    });
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("fails a compensation for good when its reference names a step without output, and goes on with the others", () => {
    const h = harness(
      [
        add(1, "a"),
        {
          ...add(2, "b", [1]),
          // Names step 4's output, which never came: the input cannot be resolved, now or later.
          compensate: {
            tool_name: "todo_store",
            tool_input: { action: "delete", todo_id: "{{steps.4.output.todo.id}}" },
          },
        },
        step(3, [2]),
        add(4, "d", [3]),
      ],
      { options: { on_failure: "compensate" } },
    );
    h.plan();
    h.succeed(1, todo("t1"));
    h.succeed(2, todo("t2"));
    h.fail(3, false);
    expect(h.start(2, 1, "compensate")).toEqual([
      "compensation.step_started#2.1",
      "compensation.step_failed#2.1",
      "compensation.step_dispatched#1.1",
    ]);
    expect(h.log.find((e) => e.type === "compensation.step_failed")?.data).toMatchObject({ retryable: false });
    h.succeed(1, deleted("t1"), 1, "compensate");
    expect(toRun(h.state).compensation).toMatchObject({
      status: "failed",
      steps: [
        { step_number: 2, status: "failed" },
        { step_number: 1, status: "succeeded" },
      ],
    });
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("retries a compensation's transient failure after its backoff (its tool's policy), then goes on", () => {
    const h = harness([add(1, "a"), step(2, [1])], { options: { on_failure: "compensate" } });
    h.plan();
    h.succeed(1, todo("t1"));
    h.fail(2, false);
    expect(h.fail(1, true, 1, "compensate")).toEqual([
      "compensation.step_started#1.1",
      "compensation.step_retry_scheduled#1.1",
    ]);
    const retryAt = Date.parse(h.log.at(-1)?.data?.retry_at as string);
    expect(nextWake(h.state)).toBe(retryAt);
    // The alarm fires at the retry time: the compensation's next attempt is dispatched.
    expect(h.tick(retryAt - h.now())).toEqual(["compensation.step_dispatched#1.2"]);
    expect(h.succeed(1, deleted("t1"), 2, "compensate")).toEqual([
      "compensation.step_started#1.2",
      "compensation.step_succeeded#1.2",
      "compensation.completed",
      "run.failed",
    ]);
    expect(toRun(h.state).compensation?.steps[0]).toMatchObject({ status: "succeeded", attempts: 2 });
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("times out a compensation attempt whose consumer vanished and runs it again", () => {
    const h = harness([add(1, "a"), step(2, [1])], { options: { on_failure: "compensate" } });
    h.plan();
    h.succeed(1, todo("t1"));
    h.fail(2, false);
    h.start(1, 1, "compensate");
    const deadline = h.state.steps.get(1)?.compensation?.deadlineAt as number;
    expect(nextWake(h.state)).toBe(deadline);
    expect(h.tick(deadline - h.now())).toEqual(["compensation.step_retry_scheduled#1.1"]);
    const retryAt = Date.parse(h.log.at(-1)?.data?.retry_at as string);
    expect(h.tick(Math.max(0, retryAt - h.now()))).toEqual(["compensation.step_dispatched#1.2"]);
    h.succeed(1, deleted("t1"), 2, "compensate");
    expect(toRun(h.state)).toMatchObject({ status: "failed", compensation: { status: "completed" } });
  });

  it("fails a compensation for good once its attempts are spent, and still ends the run", () => {
    const h = harness([add(1, "a"), step(2, [1])], { options: { on_failure: "compensate", max_attempts: 1 } });
    h.plan();
    h.succeed(1, todo("t1"));
    h.fail(2, false);
    expect(h.fail(1, true, 1, "compensate")).toEqual([
      "compensation.step_started#1.1",
      "compensation.step_failed#1.1",
      "compensation.failed",
      "run.failed",
    ]);
    expect(toRun(h.state).compensation).toMatchObject({ status: "failed", steps: [{ status: "failed" }] });
  });

  it("ignores a duplicate start and a repeated result of a compensation", () => {
    const h = harness([add(1, "a"), add(2, "b", [1]), step(3, [2])], { options: { on_failure: "compensate" } });
    h.plan();
    h.succeed(1, todo("t1"));
    h.succeed(2, todo("t2"));
    h.fail(3, false);
    h.start(2, 1, "compensate");
    expect(h.start(2, 1, "compensate")).toEqual(["step.ignored#2.1"]);
    expect(h.log.at(-1)?.data).toMatchObject({ ignored: true, task: "compensate" });
    h.finish(2, 1, { ok: true, output: deleted("t2") }, "compensate");
    expect(h.finish(2, 1, { ok: true, output: deleted("t2") }, "compensate")).toEqual(["step.ignored#2.1"]);
    // A compensation message for a step that is not being undone is ignored too.
    expect(h.start(3, 1, "compensate")).toEqual(["step.ignored#3.1"]);
    expect(types(h, "compensation.step_succeeded")).toEqual(["compensation.step_succeeded#2"]);
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("cancel with compensate undoes what succeeded, then ends the run cancelled", () => {
    const h = harness([add(1, "a"), step(2, [1]), step(3, [2])]);
    h.plan();
    h.succeed(1, todo("t1"));
    h.start(2);
    const { decision, events } = h.cancel(true);
    expect(decision.ok).toBe(true);
    expect(events).toEqual([
      "step.cancelled#2.1",
      "step.skipped#3",
      "compensation.started",
      "compensation.step_dispatched#1.1",
    ]);
    expect(toRun(h.state).status).toBe("running");
    expect(h.succeed(1, deleted("t1"), 1, "compensate")).toEqual([
      "compensation.step_started#1.1",
      "compensation.step_succeeded#1.1",
      "compensation.completed",
      "run.cancelled",
    ]);
    expect(toRun(h.state)).toMatchObject({ status: "cancelled", error: "stop", compensation: { status: "completed" } });
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("cancel with compensate of a run where nothing succeeded ends it cancelled with no compensation", () => {
    const h = harness([add(1, "a")]);
    h.plan();
    const { events } = h.cancel(true);
    expect(events).toEqual(["step.cancelled#1.1", "run.cancelled"]);
    expect(toRun(h.state).compensation).toBeNull();
  });

  it("cancel without compensate undoes nothing", () => {
    const h = harness([add(1, "a"), step(2, [1])]);
    h.plan();
    h.succeed(1, todo("t1"));
    expect(h.cancel(false).events).toEqual(["step.cancelled#2.1", "run.cancelled"]);
    expect(toRun(h.state).compensation).toBeNull();
  });

  it("refuses to cancel a compensating run (409) and a finished one (409), changing nothing", () => {
    const h = harness([add(1, "a"), step(2, [1])], { options: { on_failure: "compensate" } });
    h.plan();
    h.succeed(1, todo("t1"));
    h.fail(2, false);
    const before = h.log.length;
    const compensating = h.cancel(true);
    expect(compensating.decision).toMatchObject({ ok: false, status: 409 });
    expect(compensating.events).toEqual([]);
    expect(h.cancel(false).decision).toMatchObject({ ok: false, status: 409 });
    expect(h.log.length).toBe(before);
    h.succeed(1, deleted("t1"), 1, "compensate");
    expect(h.cancel(true).decision).toMatchObject({ ok: false, status: 409 });
  });

  it("runs a plan's own compensation, whose references name other steps and its own step", () => {
    const h = harness(
      [
        step(1, [], "calculator", { expression: "6 * 7" }),
        {
          ...add(2, "b", [1]),
          compensate: {
            tool_name: "text",
            tool_input: { operation: "uppercase", text: "undo {{steps.2.output.todo.id}} after {{steps.1.output}}" },
          },
        },
        step(3, [2]),
      ],
      { options: { on_failure: "compensate" } },
    );
    h.plan();
    h.succeed(1, 42);
    h.succeed(2, todo("t2"));
    h.fail(3, false);
    expect(h.grant(2, 1, "compensate")).toMatchObject({
      tool_name: "text",
      input: { operation: "uppercase", text: "undo t2 after 42" },
      idempotency_key: "r1:2:compensate",
    });
    expect(toRun(h.state).compensation?.steps.find((s) => s.step_number === 2)).toMatchObject({
      tool_name: "text",
      tool_input: { operation: "uppercase", text: "undo t2 after 42" },
      status: "running",
    });
  });

  it("runs a pure compensation inline when pure tools run inline", () => {
    const h = harness(
      [
        { ...add(1, "a"), compensate: { tool_name: "calculator", tool_input: { expression: "1 + 1" } } },
        step(2, [1], "sleep", { ms: 1 }),
      ],
      { inline: true },
    );
    h.plan();
    h.succeed(1, todo("t1"));
    expect(h.cancel(true).events).toEqual([
      "step.cancelled#2.1",
      "compensation.started",
      "compensation.step_dispatched#1.1",
      "compensation.step_started#1.1",
      "compensation.step_succeeded#1.1",
      "compensation.completed",
      "run.cancelled",
    ]);
    expect(h.log.find((e) => e.type === "compensation.step_dispatched")?.data?.inline).toBe(true);
    expect(toRun(h.state).compensation?.steps).toEqual([expect.objectContaining({ status: "succeeded", output: 2 })]);
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("skips the steps a rerun reused: their effects belong to the original run", () => {
    const h = harness([add(1, "a"), add(2, "b", [1]), step(3, [2])], { options: { on_failure: "compensate" } });
    h.plan([{ type: "step.reused", step_number: 1, data: { output: todo("t1") as unknown as Json, from_run: "r0" } }]);
    h.succeed(2, todo("t2"));
    expect(h.fail(3, false)).toEqual([
      "step.started#3.1",
      "step.failed#3.1",
      "compensation.started",
      "compensation.step_skipped#1",
      "compensation.step_dispatched#2.1",
    ]);
    expect(h.log.find((e) => e.type === "compensation.step_skipped")?.data?.reason).toContain("r0");
    h.succeed(2, deleted("t2"), 1, "compensate");
    expect(toRun(h.state).compensation?.steps).toEqual([
      expect.objectContaining({ step_number: 2, status: "succeeded" }),
      expect.objectContaining({ step_number: 1, status: "skipped" }),
    ]);
    expect(reduce(h.log)).toEqual(h.state);
  });

  it("undoes in the order the run completed its steps, for any DAG and completion order (driven through the core)", () => {
    fc.assert(
      fc.property(
        executionArb,
        fc.boolean(),
        fc.array(fc.boolean(), { maxLength: 12 }),
        ({ dag, picks, stopAfter }, byCancel, failCompensation) => {
          const steps: PlanStep[] = dag.numbers.map((n) => ({
            ...step(n, dag.deps.get(n) ?? []),
            compensate: { tool_name: "calculator", tool_input: { expression: `-${n}` } },
          }));
          const h = harness(steps, { options: { on_failure: "compensate", max_parallel: 50 } });
          h.plan();
          const completion: number[] = [];
          for (let k = 0; k < stopAfter; k++) {
            const queued = [...h.state.steps.values()].filter((s) => s.phase === "queued");
            if (queued.length === 0) break;
            const n = (queued[(picks[k] ?? 0) % queued.length] as { step: PlanStep }).step.step_number;
            h.succeed(n);
            completion.push(n);
          }
          if (h.state.status !== "running") return; // every step succeeded: nothing to undo
          const queued = [...h.state.steps.values()].find((s) => s.phase === "queued");
          if (byCancel || !queued) h.cancel(true);
          else h.fail(queued.step.step_number, false);

          const undone: number[] = [];
          let i = 0;
          for (;;) {
            const last = h.log.at(-1);
            if (last?.type !== "compensation.step_dispatched") break;
            const n = last.step_number as number;
            undone.push(n);
            if (failCompensation[i++]) h.fail(n, false, 1, "compensate");
            else h.succeed(n, 0, 1, "compensate");
          }
          // Newest completion first, every succeeded step once; dependants before their dependencies.
          expect(undone).toEqual([...completion].reverse());
          const pos = new Map(undone.map((n, j) => [n, j]));
          for (const n of undone) {
            for (const d of ancestors(dag, n)) expect(pos.get(n) as number).toBeLessThan(pos.get(d) as number);
          }
          expect(h.state.status).toBe(byCancel || !queued ? "cancelled" : "failed");
          const anyFailed = undone.some((_, j) => failCompensation[j] === true);
          expect(toRun(h.state).compensation?.status ?? "none").toBe(
            undone.length === 0 && completion.length === 0 ? "none" : anyFailed ? "failed" : "completed",
          );
          expect(reduce(h.log)).toEqual(h.state);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("task names of compensations (queue messages, idempotency keys)", () => {
  it("round-trips every kind of task through its message name, an agent call's compensation included", () => {
    const refs: TaskRef[] = [
      { step: 3, kind: "step", index: 0 },
      { step: 3, kind: "compensate", index: 0 },
      { step: 3, kind: "compensate", index: 7 },
      { step: 3, kind: "turn", index: 2 },
      { step: 3, kind: "call", index: 7 },
    ];
    for (const ref of refs) expect(parseTask(3, taskName(ref))).toEqual(ref);
    expect(taskName({ step: 3, kind: "compensate", index: 7 })).toBe("compensate:7");
    // A step's own compensation has one name only.
    expect(parseTask(3, "compensate:0")).toBeNull();
    // Every task of a step has its own idempotency key.
    const keys = refs.map((ref) => idempotencyKey("r", ref));
    expect(new Set(keys).size).toBe(refs.length);
    expect(idempotencyKey("r", { step: 3, kind: "compensate", index: 7 })).toBe("r:3:7:compensate");
  });
});
