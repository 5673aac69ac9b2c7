import { describe, expect, it } from "vitest";
import type { StepInput } from "../../src/contracts/plan";
import { PromptParseError } from "../../src/planner/errors";
import { planWithRules } from "../../src/planner/rules";

const steps = (prompt: string) =>
  planWithRules(prompt).steps.map(({ step_number, tool_name, tool_input, depends_on }) => ({
    step_number,
    tool_name,
    tool_input,
    depends_on,
  }));
const only = (prompt: string): Omit<StepInput, "reasoning"> => {
  const all = steps(prompt);
  expect(all).toHaveLength(1);
  return all[0] as StepInput;
};
const calc = (expression: string) => ({ tool_name: "calculator", tool_input: { expression } });
const todo = (tool_input: Record<string, unknown>) => ({ tool_name: "todo_store", tool_input });
const unparseable = (prompt: string) => {
  expect(() => planWithRules(prompt)).toThrow(PromptParseError);
  expect(() => planWithRules(prompt)).toThrow(/^Could not parse prompt/);
};

describe("rules planner: calculations", () => {
  it.each([
    ["calculate 5 * 8", "5 * 8"],
    ["Calculate (41*7)+13", "(41*7)+13"],
    ["compute 2 ^ 10", "2 ^ 10"],
    ["evaluate sqrt(16) + 1", "sqrt(16) + 1"],
    ["solve 3 * (4 + 5)", "3 * (4 + 5)"],
    ["what is 2 + 2?", "2 + 2"],
    ["What's 7 times 6", "7 * 6"],
    ["how much is 10 divided by 4", "10 / 4"],
    ["calculate 12 plus 30", "12 + 30"],
    ["calculate 12 minus 30", "12 - 30"],
    ["calculate 6 multiplied by 7", "6 * 7"],
    ["calculate 2 to the power of 8", "2 ^ 8"],
    ["calculate 9 squared", "9 ^ 2"],
    ["calculate max(1, 2)", "max(1, 2)"],
    ["41 * 7", "41 * 7"],
    ["please calculate 1 + 1.", "1 + 1"],
  ])("%s → %s", (prompt, expression) => {
    expect(only(prompt)).toMatchObject(calc(expression));
  });

  it("plans a division by zero as a calculation that will fail when it runs", () => {
    expect(only("calculate 1 / 0")).toMatchObject(calc("1 / 0"));
  });
});

describe("rules planner: todos", () => {
  it.each([
    ["add todo Review results", "Review results"],
    ["add a todo: buy milk", "buy milk"],
    ["Add a new todo called Ship it", "Ship it"],
    ["create todo write docs", "write docs"],
    ["add a todo to call mom", "call mom"],
    ["add buy milk as a todo", "buy milk"],
    ["add water plants to my todos", "water plants"],
    ["add 'pay rent' to the todo list", "pay rent"],
    ["add todo buy milk and eggs", "buy milk and eggs"],
    ["add todo buy milk and get bread", "buy milk and get bread"],
  ])("%s → add %j", (prompt, text) => {
    expect(only(prompt)).toMatchObject(todo({ action: "add", text }));
  });

  it("adds several todos for a list", () => {
    expect(steps("add todos for a, b and c")).toEqual([
      { step_number: 1, ...todo({ action: "add", text: "a" }), depends_on: [] },
      { step_number: 2, ...todo({ action: "add", text: "b" }), depends_on: [] },
      { step_number: 3, ...todo({ action: "add", text: "c" }), depends_on: [] },
    ]);
    expect(steps("add todos: write tests, fix bugs, ship").map((s) => s.tool_input)).toEqual([
      { action: "add", text: "write tests" },
      { action: "add", text: "fix bugs" },
      { action: "add", text: "ship" },
    ]);
  });

  it.each([
    "list todos",
    "list my todos",
    "show todos",
    "Show all my todos",
    "what are my todos?",
    "show the todo list",
  ])("%s → list", (prompt) => {
    expect(only(prompt)).toMatchObject(todo({ action: "list" }));
  });

  it.each([
    ["get todo abc-123", "get", "abc-123"],
    ["show todo abc", "get", "abc"],
    ["complete todo 42", "complete", "42"],
    ["mark todo 42 as done", "complete", "42"],
    ["finish task #7", "complete", "7"],
    ["delete todo abc", "delete", "abc"],
    ["remove todo abc", "delete", "abc"],
  ])("%s → %s %s", (prompt, action, todo_id) => {
    expect(only(prompt)).toMatchObject(todo({ action, todo_id }));
  });
});

describe("rules planner: and / then / references", () => {
  it("keeps clauses joined by 'and' independent", () => {
    expect(steps("calculate 1 + 1 and calculate 2 + 2")).toEqual([
      { step_number: 1, ...calc("1 + 1"), depends_on: [] },
      { step_number: 2, ...calc("2 + 2"), depends_on: [] },
    ]);
  });

  it("makes a clause after 'then' depend on the clause group before it", () => {
    expect(steps("calculate 100 / 10 and add todo Review results then list todos")).toEqual([
      { step_number: 1, ...calc("100 / 10"), depends_on: [] },
      { step_number: 2, ...todo({ action: "add", text: "Review results" }), depends_on: [] },
      { step_number: 3, ...todo({ action: "list" }), depends_on: [1, 2] },
    ]);
  });

  it.each(["it", "that", "the result", "the previous result"])(
    "resolves '%s' to the previous step's output",
    (word) => {
      expect(steps(`calculate 5 * 8 then calculate ${word} + 2`)).toEqual([
        { step_number: 1, ...calc("5 * 8"), depends_on: [] },
        { step_number: 2, ...calc("{{steps.1.output}} + 2"), depends_on: [1] },
      ]);
    },
  );

  it("understands arithmetic verbs on the previous result", () => {
    expect(
      steps("calculate 6 * 7 then multiply it by 2 and then subtract 4 from the result").map((s) => s.tool_input),
    ).toEqual([
      { expression: "6 * 7" },
      { expression: "({{steps.1.output}}) * (2)" },
      { expression: "({{steps.2.output}}) - (4)" },
    ]);
    expect(steps("calculate 1 + 1 then add 5 to it")[1]?.tool_input).toEqual({
      expression: "({{steps.1.output}}) + (5)",
    });
    expect(steps("divide 10 by 4")[0]?.tool_input).toEqual({ expression: "(10) / (4)" });
  });

  it("refers to the todo a previous step added", () => {
    expect(steps("add todo ship it then complete it")).toEqual([
      { step_number: 1, ...todo({ action: "add", text: "ship it" }), depends_on: [] },
      { step_number: 2, ...todo({ action: "complete", todo_id: "{{steps.1.output.todo.id}}" }), depends_on: [1] },
    ]);
  });

  it("accepts 'and then', 'after that' and a comma before a command", () => {
    expect(steps("calculate 1+1 and then calculate 2+2").map((s) => s.depends_on)).toEqual([[], [1]]);
    expect(steps("calculate 1+1, after that list todos").map((s) => s.depends_on)).toEqual([[], [1]]);
    expect(steps("calculate 1+1, add todo x").map((s) => s.depends_on)).toEqual([[], []]);
  });

  it("plans text and sleep steps", () => {
    expect(steps("uppercase hello world then reverse it")).toEqual([
      {
        step_number: 1,
        tool_name: "text",
        tool_input: { operation: "uppercase", text: "hello world" },
        depends_on: [],
      },
      {
        step_number: 2,
        tool_name: "text",
        tool_input: { operation: "reverse", text: "{{steps.1.output}}" },
        depends_on: [1],
      },
    ]);
    expect(only("sleep 200 ms")).toMatchObject({ tool_name: "sleep", tool_input: { ms: 200 } });
    expect(only("wait for 2 seconds")).toMatchObject({ tool_name: "sleep", tool_input: { ms: 2000 } });
  });
});

describe("rules planner: what it does not understand", () => {
  it.each([
    "tell me a joke",
    "what is the weather",
    "calculate the meaning of life",
    "add",
    "list",
    "delete todo",
    "then",
    "and",
    "calculate it + 1",
    "sleep 10 years",
    "sleep 999999 ms",
  ])("%j → Could not parse prompt", (prompt) => unparseable(prompt));

  it("says which clause it did not understand", () => {
    expect(() => planWithRules("calculate 2+2 and frobnicate the widget")).toThrow(/frobnicate/);
  });

  it("stays linear on adversarial input", () => {
    const long = `${"and then ".repeat(200)}calculate 1`;
    expect(steps(long)).toHaveLength(1);
    unparseable(`calculate ${"(".repeat(600)}`);
  });
});
