import { describe, expect, it } from "vitest";
import type { PlanInput, StepInput } from "../../src/contracts/plan";
import { topologicalOrder } from "../../src/plan/dag";
import { findReferences, resolveReferences } from "../../src/plan/references";
import { PlanValidationError, validatePlan } from "../../src/plan/validate";
import { ToolError } from "../../src/tools/errors";
import { defaultRegistry } from "../../src/tools/registry";

const opts = { planId: "p1", planner: "explicit" as const, finalGoal: "goal", pathPrefix: "plan", llm: false };
const validate = (steps: StepInput[]) => validatePlan({ steps }, defaultRegistry, opts);
const calc = (step_number: number, expression: string, depends_on?: number[]): StepInput => ({
  step_number,
  tool_name: "calculator",
  tool_input: { expression },
  ...(depends_on ? { depends_on } : {}),
});
const issues = (steps: StepInput[]) => {
  try {
    validate(steps);
  } catch (err) {
    expect(err).toBeInstanceOf(PlanValidationError);
    return (err as PlanValidationError).issues;
  }
  throw new Error("expected the plan to be rejected");
};

describe("plan validation", () => {
  it("normalises a valid plan: sorted steps, effective depends_on, empty reasoning", () => {
    const plan = validate([calc(2, "{{steps.1.output}} + 1"), calc(1, "1")]);
    expect(plan).toEqual({
      plan_id: "p1",
      planner: "explicit",
      final_goal: "goal",
      steps: [
        { step_number: 1, tool_name: "calculator", tool_input: { expression: "1" }, reasoning: "", depends_on: [] },
        {
          step_number: 2,
          tool_name: "calculator",
          tool_input: { expression: "{{steps.1.output}} + 1" },
          reasoning: "",
          depends_on: [1],
        },
      ],
    });
  });

  it("rejects an unknown tool, naming it and the field", () => {
    expect(issues([{ step_number: 1, tool_name: "rm_rf", tool_input: {} }])).toEqual([
      { path: "plan.steps[0].tool_name", message: expect.stringContaining("unknown tool 'rm_rf'") },
    ]);
  });

  it("rejects inputs that do not match the tool's schema", () => {
    const found = issues([
      { step_number: 1, tool_name: "calculator", tool_input: { expression: 42 } },
      { step_number: 2, tool_name: "sleep", tool_input: { ms: 999_999 } },
      { step_number: 3, tool_name: "todo_store", tool_input: { action: "add" } },
    ]);
    expect(found.map((i) => i.path)).toEqual([
      "plan.steps[0].tool_input.expression",
      "plan.steps[1].tool_input.ms",
      "plan.steps[2].tool_input.text",
    ]);
  });

  it("accepts a whole-reference where a number is expected, to be checked at run time", () => {
    const plan = validate([
      calc(1, "100"),
      { step_number: 2, tool_name: "sleep", tool_input: { ms: "{{steps.1.output}}" } },
    ]);
    expect(plan.steps[1]?.depends_on).toEqual([1]);
  });

  it("rejects duplicate step numbers", () => {
    expect(issues([calc(1, "1"), calc(1, "2")])).toEqual([
      { path: "plan.steps[1].step_number", message: "step_number 1 is used twice" },
    ]);
  });

  it("rejects dangling depends_on and references, and self-references", () => {
    expect(issues([calc(1, "1", [7])])[0]).toEqual({
      path: "plan.steps[0].depends_on[0]",
      message: "depends_on names step 7, which does not exist",
    });
    expect(issues([calc(1, "{{steps.9.output}} + 1")])[0]?.message).toBe("reference to step 9, which does not exist");
    expect(issues([calc(1, "1", [1])])[0]?.message).toBe("step 1 cannot depend on itself");
    expect(issues([calc(1, "{{steps.1.output}}")])[0]?.message).toBe("step 1 cannot reference its own output");
  });

  it("rejects a cycle and names its steps", () => {
    const found = issues([calc(1, "1", [3]), calc(2, "2", [1]), calc(3, "{{steps.2.output}}")]);
    expect(found).toHaveLength(1);
    expect(found[0]?.message).toMatch(/dependency cycle between steps (1 → 3 → 2 → 1|3 → 2 → 1 → 3|2 → 1 → 3 → 2)/);
  });

  it("rejects an oversize tool_input", () => {
    const found = issues([
      { step_number: 1, tool_name: "text", tool_input: { operation: "trim", text: "x".repeat(20_000) } },
    ]);
    expect(found[0]?.message).toMatch(/at most 16384 bytes/);
  });

  it("orders steps that write the same resource by step number", () => {
    const todo = (n: number, input: Record<string, string>): StepInput => ({
      step_number: n,
      tool_name: "todo_store",
      tool_input: input,
    });
    const plan = validate([
      todo(1, { action: "add", text: "a" }),
      todo(2, { action: "list" }),
      todo(3, { action: "list" }),
      todo(4, { action: "add", text: "b" }),
      calc(5, "1"),
    ]);
    expect(plan.steps.map((s) => s.depends_on)).toEqual([[], [1], [1], [1, 2, 3], []]);
  });

  it("orders conflicting steps along explicit dependencies rather than against them", () => {
    const plan = validate([
      { step_number: 1, tool_name: "todo_store", tool_input: { action: "list" }, depends_on: [2] },
      { step_number: 2, tool_name: "todo_store", tool_input: { action: "add", text: "x" } },
    ]);
    expect(plan.steps.map((s) => s.depends_on)).toEqual([[2], []]);
  });
});

describe("topological order", () => {
  it("breaks ties by the smaller step number", () => {
    const deps = new Map([
      [3, new Set<number>()],
      [1, new Set([3])],
      [2, new Set<number>()],
    ]);
    expect(topologicalOrder(deps)).toEqual([2, 3, 1]);
  });
});

describe("references", () => {
  const outputs = new Map<number, PlanInput["steps"][number]["tool_input"][string]>([
    [1, 300],
    [2, { todo: { id: "t-1", tags: ["a", "b"] } }],
  ]);

  it("keeps the type of a whole reference and substitutes text inside a longer string", () => {
    expect(resolveReferences({ a: "{{steps.1.output}}", b: "x={{steps.1.output}}!" }, outputs)).toEqual({
      a: 300,
      b: "x=300!",
    });
  });

  it("follows paths into objects and arrays", () => {
    expect(
      resolveReferences({ id: "{{steps.2.output.todo.id}}", tag: "{{ steps.2.output.todo.tags.1 }}" }, outputs),
    ).toEqual({
      id: "t-1",
      tag: "b",
    });
  });

  it("fails without retry on a missing path or step", () => {
    for (const bad of ["{{steps.2.output.todo.nope}}", "{{steps.3.output}}", "{{steps.2.output.constructor}}"]) {
      let caught: unknown;
      try {
        resolveReferences({ x: bad }, outputs);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ToolError);
      expect((caught as ToolError).retryable).toBe(false);
    }
  });

  it("finds every reference in nested input", () => {
    expect(
      findReferences({ a: ["{{steps.1.output}} and {{steps.2.output.x}}"], b: { c: "{{steps.3.output}}" } }),
    ).toEqual([
      { step: 1, path: [] },
      { step: 2, path: ["x"] },
      { step: 3, path: [] },
    ]);
  });
});
