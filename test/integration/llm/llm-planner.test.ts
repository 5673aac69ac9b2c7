import { afterEach, describe, expect, it, vi } from "vitest";
import type { Run, RunEvent } from "../../../src/contracts/run";
import { api, createRun, getEvents, waitForRun } from "../../helpers/api";
import { apiKeyFor } from "../../helpers/tenants";

// This project's config points the OpenAI-compatible client at https://llm.test/v1 (model
// "test-model", key "sk-test", 300 ms per try). The provider is faked at the HTTP boundary:
// global fetch answers for llm.test; Crane's own client code runs unchanged.

/** A fresh response per call (a Response body can be read once). */
type Reply = (() => Response) | "hang";
interface Seen {
  url: string;
  headers: Headers;
  body: {
    model: string;
    messages: { role: string; content: string }[];
    response_format?: { json_schema: { schema: unknown } };
  };
}

function fakeProvider(...replies: Reply[]) {
  const seen: Seen[] = [];
  const real = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (!url.startsWith("https://llm.test/")) return real(input, init);
    seen.push({ url, headers: new Headers(init?.headers), body: JSON.parse(String(init?.body)) });
    const reply = replies[Math.min(seen.length - 1, replies.length - 1)] as Reply;
    if (reply === "hang") {
      return new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    }
    return reply();
  });
  return seen;
}

const status = (code: number) => () => new Response("upstream says no", { status: code });
const completion =
  (content: unknown, usage = { prompt_tokens: 120, completion_tokens: 40 }) =>
  () =>
    Response.json({
      model: "test-model-2026",
      choices: [
        { message: { role: "assistant", content: typeof content === "string" ? content : JSON.stringify(content) } },
      ],
      usage,
    });

const goodPlan = {
  final_goal: "sum three numbers",
  steps: [
    { step_number: 1, tool_name: "calculator", tool_input: { expression: "12*7" }, reasoning: "a" },
    { step_number: 2, tool_name: "calculator", tool_input: { expression: "100/4" }, reasoning: "b" },
    {
      step_number: 3,
      tool_name: "calculator",
      tool_input: { expression: "{{steps.1.output}} + {{steps.2.output}}" },
      reasoning: "sum",
    },
  ],
};
const withStep = (step: Record<string, unknown>) => ({ steps: [step] });
/** A plan whose one step's input nests `depth` arrays (60,000 levels are about 120 KB of text). */
const deepPlan = (depth: number) =>
  `{"steps":[{"step_number":1,"tool_name":"calculator","tool_input":{"expression":${"[".repeat(depth)}${"]".repeat(depth)}}}]}`;

afterEach(() => vi.restoreAllMocks());

const typesOf = (events: RunEvent[]) => events.map((e) => e.type);
const eventsOfType = (events: RunEvent[], type: string) => events.filter((e) => e.type === type);

async function planned(prompt: string, planner: "auto" | "llm" = "auto"): Promise<{ run: Run; events: RunEvent[] }> {
  const created = await createRun({ prompt, planner });
  const run = await waitForRun(created.run_id);
  return { run, events: await getEvents(created.run_id) };
}

describe("LLM planner (OpenAI-compatible, faked at the HTTP boundary)", () => {
  it("plans parallel steps with references from a valid answer, and the run executes", async () => {
    const seen = fakeProvider(completion(goodPlan));
    const { run, events } = await planned("add 12 times 7 to 100 over 4");
    expect(run.plan?.planner).toBe("llm");
    expect(run.plan?.steps.map((s) => s.depends_on)).toEqual([[], [], [1, 2]]);
    expect(run).toMatchObject({ status: "completed", result: 109 });
    expect(eventsOfType(events, "plan.llm_call")[0]?.data).toMatchObject({
      model: "test-model-2026",
      tries: 1,
      prompt_tokens: 120,
      completion_tokens: 40,
      outcome: "ok",
    });
    expect(typeof eventsOfType(events, "plan.llm_call")[0]?.data?.latency_ms).toBe("number");
    // The request: the model, the key, the user's prompt, and a JSON Schema with every tool.
    expect(seen).toHaveLength(1);
    expect(seen[0]?.url).toBe("https://llm.test/v1/chat/completions");
    expect(seen[0]?.headers.get("Authorization")).toBe("Bearer sk-test");
    expect(seen[0]?.body.model).toBe("test-model");
    expect(seen[0]?.body.messages.at(-1)).toEqual({ role: "user", content: "add 12 times 7 to 100 over 4" });
    const schema = JSON.stringify(seen[0]?.body.response_format?.json_schema.schema);
    for (const tool of ["calculator", "todo_store", "text", "sleep", "http_get", "llm"])
      expect(schema).toContain(`"const":"${tool}"`);
    expect(seen[0]?.body.messages[0]?.content).toContain("{{steps.N.output}}");
  });

  it("repairs an invalid plan once by sending the errors back", async () => {
    const seen = fakeProvider(
      completion(withStep({ step_number: 1, tool_name: "shell", tool_input: {} })),
      completion(goodPlan),
    );
    const { run, events } = await planned("sum please");
    expect(run.plan?.planner).toBe("llm");
    expect(run.result).toBe(109);
    expect(eventsOfType(events, "plan.llm_call").map((e) => e.data?.outcome)).toEqual(["invalid_plan", "ok"]);
    expect(seen[1]?.body.messages.at(-1)?.content).toMatch(
      /^That plan is invalid: steps\[0\]\.tool_name: unknown tool 'shell'/,
    );
    expect(seen[1]?.body.messages.at(-2)?.role).toBe("assistant");
  });

  it.each([
    ["invalid JSON", completion("Sure! Here is your plan: steps: ..."), "invalid JSON", /not JSON/],
    [
      "an unknown tool",
      completion(withStep({ step_number: 1, tool_name: "rm_rf", tool_input: {} })),
      "invalid plan",
      /unknown tool 'rm_rf'/,
    ],
    [
      "a cycle",
      completion({
        steps: [
          { step_number: 1, tool_name: "calculator", tool_input: { expression: "1" }, depends_on: [2] },
          { step_number: 2, tool_name: "calculator", tool_input: { expression: "2" }, depends_on: [1] },
        ],
      }),
      "invalid plan",
      /dependency cycle/,
    ],
    [
      "an input that fails the tool's schema",
      completion(withStep({ step_number: 1, tool_name: "sleep", tool_input: { ms: 999_999 } })),
      "invalid plan",
      /steps\[0\]\.tool_input\.ms/,
    ],
    [
      "a plan nested 60,000 levels deep",
      completion(deepPlan(60_000)),
      "invalid plan",
      /^the plan nests arrays or objects deeper than 32 levels$/,
    ],
  ])("falls back to rules after %s (twice), recording why", async (_what, reply, reason, detail) => {
    const seen = fakeProvider(reply);
    const { run, events } = await planned("calculate 2 + 3");
    expect(seen).toHaveLength(2); // the answer and one repair
    expect(run.plan?.planner).toBe("rules");
    expect(run).toMatchObject({ status: "completed", result: 5 });
    const fallback = eventsOfType(events, "plan.fallback")[0];
    expect(fallback?.data).toMatchObject({ from: "llm", to: "rules", reason });
    expect(fallback?.data?.detail).toMatch(detail);
    expect(typesOf(events).slice(0, 5)).toEqual([
      "run.created",
      "plan.llm_call",
      "plan.llm_call",
      "plan.fallback",
      "run.planned",
    ]);
  });

  it("retries an HTTP 500 twice, then falls back with the status", async () => {
    const seen = fakeProvider(status(500));
    const { run, events } = await planned("calculate 4 * 4");
    expect(seen).toHaveLength(3);
    expect(run).toMatchObject({ status: "completed", result: 16, plan: { planner: "rules" } });
    expect(eventsOfType(events, "plan.fallback")[0]?.data).toMatchObject({
      reason: "http 500",
      detail: "Provider answered HTTP 500",
    });
    // What happened is recorded: three tries, and the time they took (two backoffs of ≥ 50 ms each).
    const call = eventsOfType(events, "plan.llm_call")[0]?.data;
    expect(call).toMatchObject({ outcome: "error", tries: 3, detail: "Provider answered HTTP 500" });
    expect(call?.latency_ms as number).toBeGreaterThanOrEqual(100);
  });

  it("retries a 429 and succeeds on the next try", async () => {
    const seen = fakeProvider(status(429), completion(goodPlan));
    const { run, events } = await planned("sum");
    expect(seen).toHaveLength(2);
    expect(run.plan?.planner).toBe("llm");
    expect(eventsOfType(events, "plan.llm_call")[0]?.data).toMatchObject({ outcome: "ok", tries: 2 });
  });

  it("falls back on a persistent 429", async () => {
    fakeProvider(status(429));
    const { events } = await planned("calculate 1 + 1");
    expect(eventsOfType(events, "plan.fallback")[0]?.data).toMatchObject({ reason: "http 429" });
  });

  it("gives up on a provider that never answers (timeout per try), then falls back", async () => {
    const seen = fakeProvider("hang");
    const { run, events } = await planned("calculate 7 - 2");
    expect(seen).toHaveLength(3);
    expect(run).toMatchObject({ status: "completed", result: 5, plan: { planner: "rules" } });
    expect(eventsOfType(events, "plan.fallback")[0]?.data).toMatchObject({
      reason: "timeout",
      detail: "Provider did not answer within 300 ms",
    });
  });

  it("with planner: llm never falls back: the run fails with the reason", async () => {
    fakeProvider(status(503));
    const { run, events } = await planned("calculate 1 + 1", "llm");
    expect(run.status).toBe("failed");
    expect(run.error).toBe("LLM planner failed (http 503): Provider answered HTTP 503");
    expect(run.plan).toBeNull();
    expect(eventsOfType(events, "plan.fallback")).toEqual([]);
  });

  it("with planner: llm, a plan nested too deep fails the run as an invalid plan (no 500)", async () => {
    fakeProvider(completion(deepPlan(60_000)));
    const { run } = await planned("calculate 1 + 1", "llm");
    expect(run.status).toBe("failed");
    expect(run.error).toBe("LLM planner failed (invalid plan): the plan nests arrays or objects deeper than 32 levels");
  });

  it("records provider token counts as non-negative integers no larger than the call could cost", async () => {
    // Its own tenant: the call is charged about the size of the planner's request, a large part of
    // this project's 10000-token day.
    const key = await apiKeyFor("t-planner-usage");
    const seen = fakeProvider(completion(goodPlan, { prompt_tokens: 1e308, completion_tokens: -40 }));
    const created = await api("/api/v1/runs", { method: "POST", key, json: { prompt: "sum", planner: "auto" } });
    const run = (await created.json()) as Run;
    expect(run.plan?.planner).toBe("llm");
    const events = (await (await api(`/api/v1/runs/${run.run_id}/events`, { key })).json()) as RunEvent[];
    const call = eventsOfType(events, "plan.llm_call")[0]?.data;
    expect(call?.completion_tokens).toBe(0);
    expect(Number.isInteger(call?.prompt_tokens)).toBe(true);
    expect(call?.prompt_tokens as number).toBeGreaterThan(0);
    expect(call?.prompt_tokens as number).toBeLessThanOrEqual(
      new TextEncoder().encode(JSON.stringify(seen[0]?.body)).length,
    );
  });

  it("with planner: rules never calls the provider", async () => {
    const seen = fakeProvider(completion(goodPlan));
    const created = await createRun({ prompt: "calculate 3 * 3", planner: "rules" });
    expect((await waitForRun(created.run_id)).result).toBe(9);
    expect(seen).toHaveLength(0);
  });

  it("runs the llm tool with the same client", async () => {
    const seen = fakeProvider(completion("Crane is a durable agent runtime."));
    const created = await createRun({
      prompt: "describe",
      plan: { steps: [{ step_number: 1, tool_name: "llm", tool_input: { prompt: "Describe Crane", max_tokens: 50 } }] },
    });
    const run = await waitForRun(created.run_id);
    expect(run).toMatchObject({ status: "completed", result: { text: "Crane is a durable agent runtime." } });
    expect(seen[0]?.body).toMatchObject({ max_tokens: 50, messages: [{ role: "user", content: "Describe Crane" }] });
    expect(seen[0]?.body.response_format).toBeUndefined();
  });
});
