import { evictDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AgentCall } from "../../../src/contracts/agent";
import type { Run, RunEvent } from "../../../src/contracts/run";
import { type MessageFault, setFaultInjector } from "../../../src/faults";
import { api, waitForRun } from "../../helpers/api";
import { todoCount } from "../../helpers/faults";
import { eventsOf, watchAgentAfterApproval } from "../../helpers/live";
import { scriptedProvider, type Turn } from "../../helpers/llm";
import { coordinator, eventually, held } from "../../helpers/recovery";
import { apiKeyFor } from "../../helpers/tenants";

// This project points the OpenAI-compatible client at https://llm.test/v1, faked at the HTTP
// boundary (test/helpers/llm.ts): the provider's answers are scripted per turn; Crane's client,
// the coordinator's loop and the consumers run as in production.

afterEach(() => {
  vi.restoreAllMocks();
  setFaultInjector(null);
});

async function agentRun(key: string, input: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const res = await api("/api/v1/runs", {
    method: "POST",
    key,
    json: { prompt: "agent", plan: { steps: [{ step_number: 1, tool_name: "agent", tool_input: input }] }, ...extra },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Run;
}

const finished = (run: Run, key: string) => waitForRun(run.run_id, 20_000, 25, key);
const eventsFor = async (runId: string, key: string) =>
  (await (await api(`/api/v1/runs/${runId}/events`, { key })).json()) as RunEvent[];
/** A crashed attempt is recovered by its deadline: keep it short. */
const FAST = { options: { step_timeout_ms: 1000 } };
const callsOf = (run: Run) => (run.execution_log[0]?.calls ?? []) as AgentCall[];
const types = (events: RunEvent[]) => events.map((e) => e.type);

/** Injects `fault` into the very first delivery of each task `match` picks (not into its retries). */
function firstDelivery(match: (task: string | undefined) => boolean, fault: MessageFault) {
  const seen = new Set<string>();
  setFaultInjector({
    onMessage(m) {
      const id = `${m.run_id}:${m.step_number}:${m.task}`;
      if (!match(m.task) || seen.has(id)) return undefined;
      seen.add(id);
      return fault;
    },
  });
}

describe("agent steps: an LLM tool-use loop inside a run", () => {
  it("runs a multi-turn loop: tool calls, their results back to the model, then the answer", async () => {
    const key = await apiKeyFor("t-agent-loop");
    const seen = scriptedProvider(
      { tool_calls: [{ name: "calculator", arguments: { expression: "2 + 3" } }], tokens: 40 },
      { tool_calls: [{ name: "text", arguments: { operation: "uppercase", text: "five" } }], tokens: 60 },
      { answer: "2 + 3 is 5 (FIVE).", tokens: 30 },
    );
    const run = await finished(await agentRun(key, { goal: "Add 2 and 3, then shout the word." }), key);
    expect(run.status).toBe("completed");
    expect(run.result).toEqual({ answer: "2 + 3 is 5 (FIVE).", turns: 3, calls: 2, tokens: 130 });
    expect(callsOf(run)).toMatchObject([
      {
        call: 1,
        turn: 1,
        tool_name: "calculator",
        tool_input: { expression: "2 + 3" },
        status: "succeeded",
        output: 5,
      },
      { call: 2, turn: 2, tool_name: "text", status: "succeeded", output: "FIVE" },
    ]);
    // Each turn saw the goal, the tools as functions, and every earlier call with its result.
    expect(seen).toHaveLength(3);
    expect(seen[0]?.body.tools?.map((t) => t.function.name)).toContain("calculator");
    expect(seen[0]?.body.tools?.map((t) => t.function.name)).not.toContain("approval");
    // A tool whose input is a union reaches the provider as one plain object (no top-level oneOf).
    const todo = seen[0]?.body.tools?.find((t) => t.function.name === "todo_store")?.function.parameters;
    expect(todo).toMatchObject({ type: "object", required: ["action"], properties: { action: { type: "string" } } });
    expect(Object.keys(todo as object)).not.toContain("oneOf");
    expect(seen[0]?.body.messages.find((m) => m.role === "user")?.content).toBe("Add 2 and 3, then shout the word.");
    const results = seen[2]?.body.messages.filter((m) => m.role === "tool").map((m) => m.content);
    expect(results).toEqual(["5", '"FIVE"']);
    // The turn is recorded before any call it asked for is dispatched.
    const events = await eventsFor(run.run_id, key);
    const turn1 = events.find((e) => e.type === "agent.turn" && e.data?.turn === 1);
    const call1 = events.find((e) => e.type === "agent.call_dispatched" && e.data?.call === 1);
    expect(turn1?.seq).toBeLessThan(call1?.seq as number);
    expect(types(events).filter((t) => t === "agent.turn")).toHaveLength(3);
    expect(types(events).filter((t) => t === "agent.call_succeeded")).toHaveLength(2);
  });

  it("answers an invalid call to the model as an error, without running it", async () => {
    const key = await apiKeyFor("t-agent-invalid");
    const seen = scriptedProvider(
      { tool_calls: [{ name: "calculator", arguments: { formula: "1 + 1" } }] },
      { answer: "I could not calculate it." },
    );
    const run = await finished(await agentRun(key, { goal: "calculate" }), key);
    expect(run.status).toBe("completed");
    expect(callsOf(run)[0]).toMatchObject({ call: 1, status: "failed", attempts: 0 });
    expect(callsOf(run)[0]?.error).toMatch(/^Invalid arguments for calculator: /);
    const told = seen[1]?.body.messages.find((m) => m.role === "tool")?.content ?? "";
    expect(told).toMatch(/^Error: Invalid arguments for calculator/);
    const events = await eventsFor(run.run_id, key);
    expect(types(events)).not.toContain("agent.call_dispatched");
  });

  it("refuses a tool outside the step's `tools`, and it never runs", async () => {
    const key = await apiKeyFor("t-agent-refused");
    const text = `agent refused ${crypto.randomUUID()}`;
    scriptedProvider({ tool_calls: [{ name: "todo_store", arguments: { action: "add", text } }] }, { answer: "done" });
    const run = await finished(await agentRun(key, { goal: "add a todo", tools: ["calculator"] }), key);
    expect(callsOf(run)[0]).toMatchObject({ tool_name: "todo_store", status: "failed" });
    expect(callsOf(run)[0]?.error).toBe("Tool 'todo_store' is not available to this agent (allowed: calculator)");
    expect(await todoCount(text)).toBe(0);
  });

  it("refuses at validation a `tools` entry that is not a callable tool (422)", async () => {
    const res = await api("/api/v1/runs", {
      method: "POST",
      json: {
        prompt: "agent",
        plan: { steps: [{ step_number: 1, tool_name: "agent", tool_input: { goal: "x", tools: ["approval"] } }] },
      },
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { errors: { path: string }[] }).errors[0]?.path).toBe(
      "plan.steps[0].tool_input.tools[0]",
    );
  });

  it("fails the step, not retried, when max_turns is reached without an answer", async () => {
    const key = await apiKeyFor("t-agent-turns");
    scriptedProvider({ tool_calls: [{ name: "calculator", arguments: { expression: "1" } }] });
    const run = await finished(await agentRun(key, { goal: "loop forever", max_turns: 2 }), key);
    expect(run.status).toBe("failed");
    expect(run.execution_log[0]?.error).toBe("agent budget exhausted: 2 of 2 turns, 100 of 8000 tokens, and no answer");
    expect(types(await eventsFor(run.run_id, key))).not.toContain("step.retry_scheduled");
  });

  it("fails the step when max_tokens is spent", async () => {
    const key = await apiKeyFor("t-agent-tokens");
    scriptedProvider({ tool_calls: [{ name: "calculator", arguments: { expression: "1" } }], tokens: 80 });
    const run = await finished(await agentRun(key, { goal: "spend", max_tokens: 100 }), key);
    expect(run.status).toBe("failed");
    // Turn 2 asked for at most 20 tokens of completion (100 - 80): the fake's 40 are charged as 20.
    expect(run.execution_log[0]?.error).toBe(
      "agent budget exhausted: 2 of 8 turns, 140 of 100 tokens: turn 2 went over max_tokens",
    );
  });

  it("shares the tenant's daily token budget across runs: agent steps fail and auto planning uses rules", async () => {
    // LLM_TOKENS_PER_DAY is 10000 in this project: two turns reported at 12000 tokens each spend it
    // (each is charged at most what it could cost: its request's bytes and the 4096 tokens it asked for).
    const key = await apiKeyFor("t-agent-daily");
    scriptedProvider(
      { tool_calls: [{ name: "calculator", arguments: { expression: "1" } }], tokens: 12_000 },
      { answer: "expensive", tokens: 12_000 },
    );
    const spend = await finished(await agentRun(key, { goal: "spend the day", max_tokens: 50_000 }), key);
    expect(spend.status).toBe("completed");
    const broke = await finished(await agentRun(key, { goal: "one more" }), key);
    expect(broke.status).toBe("failed");
    expect(broke.execution_log[0]?.error).toMatch(/budget_exhausted/);
    const planned = await api("/api/v1/runs", {
      method: "POST",
      key,
      json: { prompt: "calculate 2 + 2", planner: "auto" },
    });
    const run = await finished((await planned.json()) as Run, key);
    expect(run).toMatchObject({ status: "completed", result: 4, plan: { planner: "rules" } });
    const fallback = (await eventsFor(run.run_id, key)).find((e) => e.type === "plan.fallback");
    expect(fallback?.data).toMatchObject({ reason: "budget_exhausted" });
  });

  it("streams the answer to live watchers as deltas, in order, before the step succeeds", async () => {
    const key = await apiKeyFor("t-agent-stream");
    scriptedProvider({ answer: "The answer is forty-two.", chunks: ["The ", "answer ", "is ", "forty-two."] });
    const messages = await watchAgentAfterApproval(key);
    const deltas = messages.flatMap((m) => (m.type === "delta" ? [m] : []));
    expect(deltas.map((d) => d.text).join("")).toBe("The answer is forty-two.");
    expect(deltas.every((d) => d.step_number === 2)).toBe(true);
    const lastDelta = messages.lastIndexOf(deltas.at(-1) as (typeof messages)[number]);
    const success = messages.findIndex(
      (m) => m.type === "event" && m.event.type === "step.succeeded" && m.event.step_number === 2,
    );
    expect(lastDelta).toBeLessThan(success);
    // Deltas are not events: the log has none, and its sequence numbers stay gap-free.
    const logged = eventsOf(messages);
    expect(logged.map((e) => e.seq)).toEqual(logged.map((_, i) => (logged[0]?.seq ?? 0) + i));
  });
});

describe("agent steps: resolved input, budgets and limits", () => {
  it("runs with its input's references resolved: the model sees the goal, the log shows the input", async () => {
    const key = await apiKeyFor("t-agent-resolved");
    const seen = scriptedProvider({ tool_calls: [{ name: "calculator", arguments: { expression: "1" } }] });
    const run = await finished(
      await agentRun(
        key,
        {},
        {
          plan: {
            steps: [
              { step_number: 1, tool_name: "text", tool_input: { operation: "uppercase", text: "crane" } },
              { step_number: 2, tool_name: "calculator", tool_input: { expression: "1 + 1" } },
              {
                step_number: 3,
                tool_name: "agent",
                tool_input: { goal: "Describe {{steps.1.output}}", max_turns: "{{steps.2.output}}" },
              },
            ],
          },
        },
      ),
      key,
    );
    expect(seen[0]?.body.messages.find((m) => m.role === "user")?.content).toBe("Describe CRANE");
    expect(run.execution_log[2]?.tool_input).toEqual({ goal: "Describe CRANE", max_turns: 2 });
    // max_turns is the resolved 2, not the default 8.
    expect(seen).toHaveLength(2);
    expect(run.execution_log[2]?.error).toBe("agent budget exhausted: 2 of 2 turns, 100 of 8000 tokens, and no answer");
  });

  it("fails the step clearly when a referenced max_turns resolves to a value the agent refuses", async () => {
    const key = await apiKeyFor("t-agent-bad-turns");
    const seen = scriptedProvider({ answer: "never asked" });
    const run = await finished(
      await agentRun(
        key,
        {},
        {
          plan: {
            steps: [
              { step_number: 1, tool_name: "calculator", tool_input: { expression: "1000" } },
              { step_number: 2, tool_name: "agent", tool_input: { goal: "g", max_turns: "{{steps.1.output}}" } },
            ],
          },
        },
      ),
      key,
    );
    expect(run.status).toBe("failed");
    expect(run.execution_log[1]?.status).toBe("failed");
    expect(run.execution_log[1]?.error).toMatch(/^Invalid input for agent: max_turns: /);
    expect(seen).toHaveLength(0);
  });

  it("fails an answer over the 64 KiB output limit like a tool's oversized output", async () => {
    const key = await apiKeyFor("t-agent-big-answer");
    scriptedProvider({ answer: "a".repeat(70_000) });
    const run = await finished(await agentRun(key, { goal: "write a lot" }), key);
    expect(run.status).toBe("failed");
    expect(run.execution_log[0]?.error).toMatch(/^Output of 700\d\d bytes exceeds the 65536-byte limit$/);
    const events = await eventsFor(run.run_id, key);
    const failed = events.find((e) => e.type === "step.failed");
    expect(failed?.data).toMatchObject({ code: "output_too_large", retryable: false });
    // The turn's record keeps the answer's first 1,000 characters and its size, not the whole of it.
    const turn = events.find((e) => e.type === "agent.turn");
    expect(turn?.data).toEqual({ turn: 1, tokens: expect.any(Number), answer: "a".repeat(1000), answer_bytes: 70_013 });
  });

  it("checks max_tokens after an answer too: an answer that goes over it is not accepted", async () => {
    const key = await apiKeyFor("t-agent-answer-tokens");
    scriptedProvider({ answer: "expensive", tokens: 150 });
    const run = await finished(await agentRun(key, { goal: "answer", max_tokens: 100 }), key);
    expect(run.status).toBe("failed");
    expect(run.execution_log[0]?.error).toBe(
      "agent budget exhausted: 1 of 8 turns, 150 of 100 tokens: turn 1 went over max_tokens",
    );
  });
});

describe("agent steps: what the model writes is checked before it is stored", () => {
  it.each([
    [
      "nested 3000 levels deep",
      `{"expression":${"[".repeat(2999)}${"]".repeat(2999)}}`,
      /^Arguments for calculator nest arrays or objects deeper than 32 levels$/,
    ],
    ["not JSON", "{expression: 1 + 1}", /^Arguments for calculator are not valid JSON \(.+\)$/],
    [
      "over 16 KiB",
      JSON.stringify({ expression: "1".repeat(20_000) }),
      /^Arguments for calculator exceed 16384 bytes$/,
    ],
  ])("refuses tool-call arguments %s back to the model, and stores none of them", async (_what, raw, error) => {
    const key = await apiKeyFor(`t-agent-args-${crypto.randomUUID()}`);
    const seen = scriptedProvider({ tool_calls: [{ name: "calculator", raw }] }, { answer: "I give up." });
    const run = await finished(await agentRun(key, { goal: "calculate" }), key);
    expect(run).toMatchObject({ status: "completed", result: { answer: "I give up.", calls: 1 } });
    expect(callsOf(run)[0]).toMatchObject({ status: "failed", tool_input: {}, attempts: 0 });
    expect(callsOf(run)[0]?.error).toMatch(error);
    expect(seen[1]?.body.messages.find((m) => m.role === "tool")?.content).toBe(`Error: ${callsOf(run)[0]?.error}`);
    const events = await eventsFor(run.run_id, key);
    expect(JSON.stringify(events)).not.toContain("[[[[");
    expect(JSON.stringify(events)).not.toContain("1".repeat(1000));
  });

  it("charges provider token counts as non-negative integers no larger than the call could cost", async () => {
    const key = await apiKeyFor("t-agent-usage");
    const seen = scriptedProvider(
      {
        tool_calls: [{ name: "calculator", arguments: { expression: "1" } }],
        usage: { prompt_tokens: -1e6, completion_tokens: -1e6 },
      },
      { answer: "huge", usage: { prompt_tokens: 1e308, completion_tokens: 1e308 } },
    );
    const run = await finished(await agentRun(key, { goal: "count", tools: ["calculator"], max_tokens: 100_000 }), key);
    expect(run.status).toBe("completed");
    const tokens = (run.result as { tokens: number }).tokens;
    // Turn 1 cost nothing (not less); turn 2 at most its request's bytes and the max_tokens it asked for.
    const request = seen[1]?.body;
    expect(Number.isInteger(tokens)).toBe(true);
    expect(tokens).toBeGreaterThan(0);
    expect(tokens).toBeLessThanOrEqual(JSON.stringify(request).length + (request?.max_tokens ?? 0));
    const turns = (await eventsFor(run.run_id, key)).filter((e) => e.type === "agent.turn").map((e) => e.data?.tokens);
    expect(turns).toEqual([0, tokens]);
    // The tenant's day (10000 tokens in this project) is not spent by one report of 1e308.
    scriptedProvider({ answer: "still here" });
    expect((await finished(await agentRun(key, { goal: "again" }), key)).status).toBe("completed");
  });
});

describe("agent steps survive crashes: no repeated call, no lost turn", () => {
  const todoAgent = (text: string): Turn[] => [
    { tool_calls: [{ name: "todo_store", arguments: { action: "add", text } }] },
    { answer: "added" },
  ];

  it("a consumer crash between a model turn and its tool call: the call runs once, the turn is not asked again", async () => {
    const key = await apiKeyFor("t-agent-crash1");
    const text = `agent crash before ${crypto.randomUUID()}`;
    const seen = scriptedProvider(...todoAgent(text));
    firstDelivery((task) => task === "call:1", { throwBeforeTool: true });
    const run = await finished(await agentRun(key, { goal: "add it" }, FAST), key);
    expect(run.status).toBe("completed");
    expect(await todoCount(text)).toBe(1);
    expect(seen).toHaveLength(2);
    expect(callsOf(run)[0]).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("a consumer crash after the tool call ran, before it reported: one todo, the next turn once", async () => {
    const key = await apiKeyFor("t-agent-crash2");
    const text = `agent crash after ${crypto.randomUUID()}`;
    const seen = scriptedProvider(...todoAgent(text));
    firstDelivery((task) => task === "call:1", { throwAfterTool: true });
    const run = await finished(await agentRun(key, { goal: "add it" }, FAST), key);
    expect(run.status).toBe("completed");
    expect(await todoCount(text)).toBe(1);
    expect(seen).toHaveLength(2);
  });

  it("a crash after the model answered a turn, before the answer was recorded: the turn is asked again, the call runs once", async () => {
    const key = await apiKeyFor("t-agent-crash3");
    const text = `agent crash turn ${crypto.randomUUID()}`;
    // The model asks for the same call again when the lost turn is asked again.
    const [ask, answer] = todoAgent(text) as [Turn, Turn];
    const seen = scriptedProvider(ask, ask, answer);
    firstDelivery((task) => task === "turn:1", { throwAfterTool: true });
    const run = await finished(await agentRun(key, { goal: "add it" }, FAST), key);
    expect(run.status).toBe("completed");
    // The unrecorded answer is lost with the crash and the turn asked again; its call still runs once.
    expect(seen).toHaveLength(3);
    expect(await todoCount(text)).toBe(1);
    expect(callsOf(run)).toHaveLength(1);
  });

  it("duplicate delivery of a tool call adds one todo", async () => {
    const key = await apiKeyFor("t-agent-dup");
    const text = `agent duplicate ${crypto.randomUUID()}`;
    scriptedProvider(...todoAgent(text));
    firstDelivery((task) => task?.startsWith("call:") === true, { duplicate: true });
    const run = await finished(await agentRun(key, { goal: "add it" }, FAST), key);
    expect(run.status).toBe("completed");
    expect(await todoCount(text)).toBe(1);
    // The second delivery was recorded as a duplicate, not applied (it may land after the run ended).
    const events = await eventually(
      "the duplicate to be recorded",
      () => eventsFor(run.run_id, key),
      (es) => es.some((e) => e.type === "step.ignored" && e.data?.task === "call:1"),
    );
    const ignored = events.filter((e) => e.type === "step.ignored" && e.data?.task === "call:1");
    expect(ignored).toHaveLength(1);
    expect(ignored[0]?.data).toMatchObject({ ignored: true });
  });

  it("eviction of the coordinator between a turn and its call loses nothing", async () => {
    const key = await apiKeyFor("t-agent-evict");
    const text = `agent evict ${crypto.randomUUID()}`;
    scriptedProvider(...todoAgent(text));
    // The call's report is held until the coordinator has been evicted: the turn is done, the
    // call ran, and its result has not been recorded yet.
    const hold = held();
    firstDelivery((task) => task === "call:1", { holdReport: hold.until });
    const created = await agentRun(key, { goal: "add it" }, FAST);
    await eventually(
      "the call to start",
      () => eventsFor(created.run_id, key),
      (es) => es.some((e) => e.type === "agent.call_started"),
    );
    await evictDurableObject(coordinator("t-agent-evict", created.run_id));
    hold.release();
    const run = await finished(created, key);
    expect(run.status).toBe("completed");
    expect(await todoCount(text)).toBe(1);
    expect(callsOf(run)[0]).toMatchObject({ status: "succeeded", attempts: 1 });
  });
});
