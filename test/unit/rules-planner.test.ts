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

describe("rules planner: waiting (timers, approvals, signals)", () => {
  const wait = (tool_input: Record<string, unknown>) => ({ tool_name: "wait", tool_input });
  const sleep = (ms: number) => ({ tool_name: "sleep", tool_input: { ms } });
  const approval = (message: string) => ({ tool_name: "approval", tool_input: { message } });
  const signal = (name: string) => ({ tool_name: "signal", tool_input: { name } });
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;

  it.each([
    ["wait 2 hours", 2 * HOUR],
    ["wait 3 days", 3 * DAY],
    ["wait for 3 days", 3 * DAY],
    ["Wait 2 Hours.", 2 * HOUR],
    ["please wait 5 minutes", 300_000],
    ["wait 90 seconds", 90_000],
    ["wait 1 week", 7 * DAY],
    ["wait 2 weeks", 14 * DAY],
    ["wait an hour", HOUR],
    ["wait a day", DAY],
    ["wait one week", 7 * DAY],
    ["wait 1.5 hours", 1.5 * HOUR],
    ["wait 0.1 hours", 360_000],
    ["wait 90s", 90_000],
    ["wait 2h", 2 * HOUR],
    ["wait 3d", 3 * DAY],
    ["wait 365 days", 365 * DAY],
    ["wait 52 weeks", 364 * DAY],
    ["wait 61000 ms", 61_000],
    ["wait 31536000000 ms", 31_536_000_000],
  ])("%s → wait %i ms", (prompt, ms) => {
    expect(only(prompt)).toMatchObject(wait({ ms }));
  });

  it.each([
    ["2 ms", 2],
    ["2 millisecond", 2],
    ["2 milliseconds", 2],
    ["2 msec", 2],
    ["2 s", 2_000],
    ["2 sec", 2_000],
    ["2 secs", 2_000],
    ["1 second", 1_000],
    ["2 seconds", 2_000],
    ["2 m", 120_000],
    ["2 min", 120_000],
    ["2 mins", 120_000],
    ["1 minute", 60_000],
    ["2 minutes", 120_000],
    ["2 h", 2 * HOUR],
    ["2 hr", 2 * HOUR],
    ["2 hrs", 2 * HOUR],
    ["1 hour", HOUR],
    ["2 hours", 2 * HOUR],
    ["2 d", 2 * DAY],
    ["1 day", DAY],
    ["2 days", 2 * DAY],
    ["2 w", 14 * DAY],
    ["2 wk", 14 * DAY],
    ["1 week", 7 * DAY],
    ["2 weeks", 14 * DAY],
  ])("understands the unit in 'wait %s' (%i ms)", (duration, ms) => {
    expect(only(`wait ${duration}`)).toMatchObject(ms <= 60_000 ? sleep(ms) : wait({ ms }));
  });

  it("makes a pause over sleepMaxMs (half the run's step timeout) a durable wait, whichever the verb", () => {
    const plan = (prompt: string) =>
      planWithRules(prompt, { sleepMaxMs: 15_000 }).steps.map((s) => [s.tool_name, s.tool_input]);
    expect(plan("wait 1 minute")).toEqual([["wait", { ms: 60_000 }]]);
    expect(plan("sleep 20 seconds")).toEqual([["wait", { ms: 20_000 }]]);
    expect(plan("wait 15 seconds")).toEqual([["sleep", { ms: 15_000 }]]);
    expect(plan("sleep 0 ms")).toEqual([["sleep", { ms: 0 }]]);
    expect(plan("wait 2 hours")).toEqual([["wait", { ms: 2 * 60 * 60 * 1000 }]]);
  });

  it("keeps short waits the sleep tool: 60 s is a sleep, 61 s a durable wait", () => {
    expect(only("wait 60 seconds")).toMatchObject(sleep(60_000));
    expect(only("wait 60000 ms")).toMatchObject(sleep(60_000));
    expect(only("wait a minute")).toMatchObject(sleep(60_000));
    expect(only("wait 1 minute")).toMatchObject(sleep(60_000));
    expect(only("wait 61 seconds")).toMatchObject(wait({ ms: 61_000 }));
    expect(only("wait 60001 ms")).toMatchObject(wait({ ms: 60_001 }));
    expect(only("wait 2 seconds")).toMatchObject(sleep(2_000));
    expect(only("wait for 2 seconds")).toMatchObject(sleep(2_000));
    expect(only("sleep 500 ms")).toMatchObject(sleep(500));
    expect(only("sleep 500ms")).toMatchObject(sleep(500));
    expect(only("sleep 0 ms")).toMatchObject(sleep(0));
    expect(only("sleep 1 minute")).toMatchObject(sleep(60_000));
  });

  it.each([
    ["wait until 2027-01-04T09:00:00Z", "2027-01-04T09:00:00.000Z"],
    ["Wait until 2027-01-04T09:00:00Z.", "2027-01-04T09:00:00.000Z"],
    ["wait until 2027-01-04T09:00Z", "2027-01-04T09:00:00.000Z"],
    ["wait until 2027-01-04t09:00:00z", "2027-01-04T09:00:00.000Z"],
    ["wait until 2027-01-04T09:00:00.250Z", "2027-01-04T09:00:00.250Z"],
    ["wait until 2027-01-04T10:00:00+01:00", "2027-01-04T09:00:00.000Z"],
    ["wait until 2027-01-04T04:30:00-0430", "2027-01-04T09:00:00.000Z"],
    ["wait until 2027-01-04T09:00:00", "2027-01-04T09:00:00.000Z"],
    ["wait until 2027-01-04", "2027-01-04T00:00:00.000Z"],
    ["wait until 2020-01-01T00:00:00Z", "2020-01-01T00:00:00.000Z"],
    ["wait until 2028-02-29T12:00:00Z", "2028-02-29T12:00:00.000Z"],
  ])("%s → wait until %s (as written, past or future)", (prompt, until) => {
    expect(only(prompt)).toMatchObject(wait({ until }));
  });

  it.each([
    ["ask for approval to deploy", "deploy"],
    ["Ask for approval to Deploy v2 to Production.", "Deploy v2 to Production"],
    ["ask for approval for the release", "the release"],
    ["get approval for the Q3 budget", "the Q3 budget"],
    ["get approval to ship it", "ship it"],
    ["please get approval for launch!", "launch"],
    ["ask for approval: Ship it now", "Ship it now"],
    ["ask for approval to 'push to prod'", "push to prod"],
    ["ask for approval to deploy and notify customers", "deploy and notify customers"],
    ["ask for approval to add todo x", "add todo x"],
    ["ask for approval to calculate 1 + 1", "calculate 1 + 1"],
  ])("%s → approval %j", (prompt, message) => {
    expect(only(prompt)).toMatchObject(approval(message));
  });

  it("takes an approval message up to 2000 characters", () => {
    const long = "x".repeat(2000);
    expect(only(`ask for approval to ${long}`)).toMatchObject(approval(long));
    unparseable(`ask for approval to ${long}x`);
  });

  it.each([
    ["wait for the signal payment_received", "payment_received"],
    ["wait for signal payment_received", "payment_received"],
    ["wait for payment_received signal", "payment_received"],
    ["wait for the payment_received signal", "payment_received"],
    ["Wait for the signal Deploy.Done-2", "Deploy.Done-2"],
    ["wait for the signal CI_Passed.", "CI_Passed"],
    ["wait for MergeApproved signal", "MergeApproved"],
    ['wait for the signal "go"', "go"],
    [`wait for the signal ${"a".repeat(64)}`, "a".repeat(64)],
  ])("%s → signal %s (case kept)", (prompt, name) => {
    expect(only(prompt)).toMatchObject(signal(name));
  });

  it("joins waiting clauses with 'then'", () => {
    expect(steps("add todo ship it then ask for approval to deploy then wait 2 hours then calculate 1+1")).toEqual([
      { step_number: 1, ...todo({ action: "add", text: "ship it" }), depends_on: [] },
      { step_number: 2, ...approval("deploy"), depends_on: [1] },
      { step_number: 3, ...wait({ ms: 2 * HOUR }), depends_on: [2] },
      { step_number: 4, ...calc("1+1"), depends_on: [3] },
    ]);
    expect(
      steps("wait until 2027-01-04T09:00:00Z and then wait for the signal go, after that get approval for Launch"),
    ).toEqual([
      { step_number: 1, ...wait({ until: "2027-01-04T09:00:00.000Z" }), depends_on: [] },
      { step_number: 2, ...signal("go"), depends_on: [1] },
      { step_number: 3, ...approval("Launch"), depends_on: [2] },
    ]);
  });

  it("joins waiting clauses with 'and'", () => {
    expect(
      steps("calculate 1+1 and ask for approval to Ship and wait for the CI signal and wait 3 days then list todos"),
    ).toEqual([
      { step_number: 1, ...calc("1+1"), depends_on: [] },
      { step_number: 2, ...approval("Ship"), depends_on: [] },
      { step_number: 3, ...signal("CI"), depends_on: [] },
      { step_number: 4, ...wait({ ms: 3 * DAY }), depends_on: [] },
      { step_number: 5, ...todo({ action: "list" }), depends_on: [1, 2, 3, 4] },
    ]);
    expect(steps("add todo x, ask for approval to y").map((s) => s.tool_name)).toEqual(["todo_store", "approval"]);
    expect(steps("get approval for deploy and get bread")).toEqual([
      { step_number: 1, ...approval("deploy and get bread"), depends_on: [] },
    ]);
  });

  it("leaves a todo that merely mentions approval alone", () => {
    expect(only("add todo buy milk and ask for approval")).toMatchObject(
      todo({ action: "add", text: "buy milk and ask for approval" }),
    );
  });

  it.each([
    // durations
    "wait 0 seconds",
    "wait 0 ms",
    "wait 0.5 ms",
    "wait 400 days",
    "wait 366 days",
    "wait 53 weeks",
    "wait 31536000001 ms",
    "wait 1e3 seconds",
    "wait -5 minutes",
    "wait 2 fortnights",
    "wait 2 hours 30 minutes",
    "wait hours",
    "wait",
    "sleep 2 hours",
    "sleep 61 seconds",
    // timestamps
    "wait until",
    "wait until tomorrow",
    "wait until 2027-02-30",
    "wait until 2027-13-01T00:00:00Z",
    "wait until 2027-01-04T24:00:00Z",
    "wait until 2027-01-04T09:60:00Z",
    "wait until 2027-01-04T09:00:00+25:00",
    "wait until 2027-01-04 09:00:00Z",
    "wait until Jan 4 2027",
    "wait until 1735689600000",
    // signals
    "wait for the signal",
    "wait for signal",
    "wait for the signal a/b",
    "wait for the signal a b",
    "wait for the signal ünïcode",
    `wait for the signal ${"a".repeat(65)}`,
    "wait for the big deploy signal",
    // approvals
    "ask for approval",
    "ask for approval to",
    "get approval",
    "ask for approval deploy",
    "wait for approval to deploy",
  ])("%j → Could not parse prompt", (prompt) => unparseable(prompt));

  it("refuses huge adversarial waiting phrases cleanly, and plans a long run of waits", () => {
    unparseable(`wait until ${"2027-01-04".repeat(500)}`);
    unparseable(`wait ${"9".repeat(5000)} hours`);
    unparseable(`wait for the signal ${"a".repeat(5000)}`);
    expect(steps(`${"wait 2 hours then ".repeat(40)}wait 1 day`)).toHaveLength(41);
  });
});
