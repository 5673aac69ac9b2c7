import { describe, expect, it } from "vitest";
import type { Json } from "../../src/contracts/common";
import { MAX_PROMPT_CHARS } from "../../src/llm/types";
import { reduce } from "../../src/run/state";
import { toRun } from "../../src/run/view";
import { harness, step } from "../helpers/core";

/** A plan whose step 1 is a calculator (its output is `expression`'s value) and step 2 the agent. */
function afterCalculator(expression: string, agentInput: Record<string, Json>) {
  const h = harness([step(1, [], "calculator", { expression }), step(2, [1], "agent", agentInput)]);
  h.plan();
  return h;
}

/** What turn `k` of step `n` asks the model with (its grant; the attempt starts). */
function turnContext<T>(h: ReturnType<typeof harness>, n: number, k: number): T {
  const grant = h.grant(n, 1, `turn:${k}`);
  if (!grant?.turn) throw new Error(`turn ${k} of step ${n} was not granted`);
  return grant.turn as T;
}

const turn = (h: ReturnType<typeof harness>, n: number, k: number, output: Json) => {
  // Every turn is its own task: its first attempt is 1.
  const grant = h.grant(n, 1, `turn:${k}`);
  const events = h.finish(n, 1, { ok: true, output }, `turn:${k}`);
  return { grant, events };
};

const failure = (h: ReturnType<typeof harness>, n: number) =>
  h.log.find((e) => e.type === "step.failed" && e.step_number === n)?.data;

describe("agent steps in the pure core", () => {
  it("runs with its input's references resolved: the model's goal, max_turns, and the execution log", () => {
    const h = afterCalculator("1", { goal: "Explain the number {{steps.1.output}}", max_turns: "{{steps.1.output}}" });
    h.succeed(1, 1);
    expect(h.log.at(-1)?.data?.input).toEqual({ goal: "Explain the number 1", max_turns: 1 });
    const { grant } = turn(h, 2, 1, {
      tool_calls: [{ name: "calculator", arguments: { expression: "2" } }],
      tokens: 10,
    });
    expect((grant?.turn as { goal?: string } | undefined)?.goal).toBe("Explain the number 1");
    expect(toRun(h.state).execution_log[1]?.tool_input).toEqual({ goal: "Explain the number 1", max_turns: 1 });
    // max_turns resolved to 1: after the first turn's call, no second turn is asked.
    expect(h.succeed(2, 2, 1, "call:1").at(-2)).toBe("step.failed#2.1");
    expect(failure(h, 2)).toMatchObject({
      error: "agent budget exhausted: 1 of 1 turns, 10 of 8000 tokens, and no answer",
      code: "budget_exhausted",
    });
    expect(reduce(h.log)).toEqual(h.state);
  });

  it.each([
    ["max_turns", "99", { goal: "g", max_turns: "{{steps.1.output}}" }, /^Invalid input for agent: max_turns: /],
    ["goal", "7", { goal: "{{steps.1.output}}" }, /^Invalid input for agent: goal: /],
    ["max_tokens", "-1", { goal: "g", max_tokens: "{{steps.1.output}}" }, /^Invalid input for agent: max_tokens: /],
  ])("a resolved %s that breaks the agent's schema fails the step, not retried", (_field, value, input, message) => {
    const h = afterCalculator(value, input);
    expect(h.succeed(1, Number(value))).toContain("step.failed#2.1");
    expect(failure(h, 2)).toMatchObject({ code: "invalid_input", retryable: false });
    expect(failure(h, 2)?.error).toMatch(message);
    expect(h.log.some((e) => e.type === "agent.turn_dispatched")).toBe(false);
    expect(h.state.status).toBe("failed");
  });

  it("checks the budget after every turn: an answer that takes the tokens over max_tokens is not accepted", () => {
    const h = harness([step(1, [], "agent", { goal: "g", max_tokens: 100 })]);
    h.plan();
    turn(h, 1, 1, { answer: "done", tokens: 150 });
    expect(h.state.steps.get(1)?.phase).toBe("failed");
    expect(failure(h, 1)).toMatchObject({
      error: "agent budget exhausted: 1 of 8 turns, 150 of 100 tokens: turn 1 went over max_tokens",
      code: "budget_exhausted",
      retryable: false,
    });
  });

  it("an answer within max_tokens succeeds, even when it spends the budget exactly", () => {
    const h = harness([step(1, [], "agent", { goal: "g", max_tokens: 100 })]);
    h.plan();
    turn(h, 1, 1, { answer: "done", tokens: 100 });
    expect(toRun(h.state)).toMatchObject({
      status: "completed",
      result: { answer: "done", turns: 1, calls: 0, tokens: 100 },
    });
  });

  it("a tool-call turn that goes over max_tokens fails the step without running its calls", () => {
    const h = harness([step(1, [], "agent", { goal: "g", max_tokens: 100 })]);
    h.plan();
    const { events } = turn(h, 1, 1, {
      tool_calls: [{ name: "calculator", arguments: { expression: "1" } }],
      tokens: 101,
    });
    expect(events).not.toContain("agent.call_dispatched#1:call1");
    expect(h.log.some((e) => e.type === "agent.call_dispatched")).toBe(false);
    expect(failure(h, 1)?.error).toBe(
      "agent budget exhausted: 1 of 8 turns, 101 of 100 tokens: turn 1 went over max_tokens",
    );
  });

  it("an answer over the 64 KiB output limit fails the step like an oversized tool output", () => {
    const h = harness([step(1, [], "agent", { goal: "g" })]);
    h.plan();
    turn(h, 1, 1, { answer: "a".repeat(70_000), tokens: 10 });
    expect(failure(h, 1)).toMatchObject({ code: "output_too_large", retryable: false });
    expect(failure(h, 1)?.error).toMatch(/^Output of 700\d\d bytes exceeds the 65536-byte limit$/);
    expect(h.state.status).toBe("failed");
  });

  it("answers arguments the provider client refused to the model with the reason, and stores none of them", () => {
    const h = harness([step(1, [], "agent", { goal: "g" })]);
    h.plan();
    turn(h, 1, 1, {
      tool_calls: [
        { name: "calculator", arguments: {}, invalid: "nest arrays or objects deeper than 32 levels" },
        { name: "calculator", arguments: {}, invalid: "are not valid JSON (Unexpected token)" },
      ],
      tokens: 10,
    });
    const calls = toRun(h.state).execution_log[0]?.calls ?? [];
    expect(calls.map((c) => [c.status, c.tool_input, c.error])).toEqual([
      ["failed", {}, "Arguments for calculator nest arrays or objects deeper than 32 levels"],
      ["failed", {}, "Arguments for calculator are not valid JSON (Unexpected token)"],
    ]);
    const next = turnContext<{ messages: { role: string; content?: string }[] }>(h, 1, 2);
    expect(next.messages.filter((m) => m.role === "tool").map((m) => m.content)).toEqual([
      "Error: Arguments for calculator nest arrays or objects deeper than 32 levels",
      "Error: Arguments for calculator are not valid JSON (Unexpected token)",
    ]);
  });

  it("keeps a long transcript under the prompt limit: old results first, then the oldest turns", () => {
    const h = harness([step(1, [], "agent", { goal: "g", max_turns: 20 })]);
    h.plan();
    const big = "x".repeat(5000);
    const promptChars = (messages: { content?: string; tool_calls?: unknown }[]) =>
      messages.reduce(
        (n, m) => n + (m.content?.length ?? 0) + (m.tool_calls ? JSON.stringify(m.tool_calls).length : 0),
        0,
      );
    let messages: { role: string; content?: string; tool_calls?: unknown }[] = [];
    h.grant(1, 1, "turn:1");
    for (let k = 1; k <= 8; k++) {
      const asked = { tool_calls: [{ name: "text", arguments: { operation: "uppercase", text: big } }], tokens: 1 };
      h.finish(1, 1, { ok: true, output: asked }, `turn:${k}`);
      h.succeed(1, big.toUpperCase(), 1, `call:${k}`);
      messages = turnContext<{ messages: typeof messages }>(h, 1, k + 1).messages;
      expect(promptChars(messages) + "g".length).toBeLessThanOrEqual(MAX_PROMPT_CHARS - 1000);
      if (k === 4) {
        // Four turns are over the limit with every result: the oldest results make way first.
        const results = messages.filter((m) => m.role === "tool").map((m) => m.content?.slice(0, 20));
        expect(results).toEqual([
          "(result omitted to k",
          "(result omitted to k",
          '"XXXXXXXXXXXXXXXXXXX',
          '"XXXXXXXXXXXXXXXXXXX',
        ]);
      }
    }
    // After eight turns even the calls do not fit: the oldest turns are left out, and the model is told.
    expect(messages[0]).toEqual({ role: "user", content: expect.stringMatching(/^\(The first \d turns are left out/) });
    expect(messages.at(-1)).toMatchObject({ role: "tool", tool_call_id: "call_8" });
  });
});
