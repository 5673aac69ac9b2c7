import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Run, RunEvent } from "../../../src/contracts/run";
import { chat } from "../../../src/llm/client";
import { type LlmProvider, llmProvider } from "../../../src/llm/config";
import { api, waitForRun } from "../../helpers/api";
import { watchAgentAfterApproval } from "../../helpers/live";
import { scriptedProvider, type Turn } from "../../helpers/llm";
import { eventually } from "../../helpers/recovery";
import { apiKeyFor } from "../../helpers/tenants";

// What a provider should not answer, and Crane must still handle: a body of `null`, stream chunks
// of the wrong shape, an error object after a 200, an empty answer, a content-filter refusal, no
// usage, a 429 with Retry-After, a turn of more tool calls than a turn may make. Each is a clear
// failure of the call (or a bounded success), never a 500, a stuck step or an empty "success".
// The provider is faked at its HTTP boundary (test/helpers/llm.ts); Crane's client runs as in production.

afterEach(() => vi.restoreAllMocks());

const json = (body: string): Turn => ({
  respond: () => new Response(body, { headers: { "Content-Type": "application/json" } }),
});
const stream = (...chunks: string[]): Turn => ({
  respond: () =>
    new Response(`${chunks.map((c) => `data: ${c}\n\n`).join("")}data: [DONE]\n\n`, {
      headers: { "Content-Type": "text/event-stream" },
    }),
});

async function post(key: string, body: Record<string, unknown>): Promise<Response> {
  return api("/api/v1/runs", { method: "POST", key, json: body });
}

async function agent(key: string, input: Record<string, unknown>, options: Record<string, unknown> = {}): Promise<Run> {
  const res = await post(key, {
    prompt: "agent",
    plan: { steps: [{ step_number: 1, tool_name: "agent", tool_input: input }] },
    options: { max_attempts: 1, ...options },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Run;
}

const finished = (run: Run, key: string) => waitForRun(run.run_id, 20_000, 25, key);
const eventsOf = async (runId: string, key: string) =>
  (await (await api(`/api/v1/runs/${runId}/events`, { key })).json()) as RunEvent[];
const turnFailure = async (run: Run, key: string) =>
  (await eventsOf(run.run_id, key)).find((e) => e.type === "agent.turn_failed")?.data;

describe("a provider's answer of the wrong shape is a failed call, never a 500", () => {
  it("a body of null: auto planning falls back to the rules planner, llm planning fails the run; both answer 201", async () => {
    const key = await apiKeyFor("t-llm-null-plan");
    scriptedProvider(json("null"));
    const auto = await post(key, { prompt: "calculate 2+3", planner: "auto" });
    expect(auto.status).toBe(201);
    const fallback = await finished((await auto.json()) as Run, key);
    expect(fallback.status).toBe("completed");
    expect(fallback.plan?.planner).toBe("rules");
    const events = await eventsOf(fallback.run_id, key);
    expect(events.find((e) => e.type === "plan.fallback")?.data).toMatchObject({ reason: "bad_response" });

    const llm = await post(key, { prompt: "calculate 2+3", planner: "llm" });
    expect(llm.status).toBe(201);
    const failed = (await llm.json()) as Run;
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/LLM planner failed \(bad_response\): Provider answer is not a JSON object/);
  });

  it("an agent turn answered null fails at once as bad_response, not after its deadline", async () => {
    const key = await apiKeyFor("t-llm-null-agent");
    scriptedProvider(json("null"));
    const run = await finished(await agent(key, { goal: "anything" }), key);
    expect(run.status).toBe("failed");
    expect(await turnFailure(run, key)).toMatchObject({ code: "bad_response", retryable: false });
    expect(run.execution_log[0]?.error).toMatch(/Provider answer is not a JSON object/);
  });

  it("stream chunks of the wrong shape fail the turn as bad_response", async () => {
    const key = await apiKeyFor("t-llm-bad-chunks");
    for (const chunk of [
      "null",
      '{"choices":[{"delta":{"tool_calls":{"index":0}}}]}',
      '{"choices":[{"delta":{"tool_calls":[null]}}]}',
    ]) {
      scriptedProvider(stream(chunk));
      const run = await finished(await agent(key, { goal: "anything" }), key);
      expect(run.status, chunk).toBe("failed");
      expect(await turnFailure(run, key), chunk).toMatchObject({ code: "bad_response" });
    }
  });

  it("an error object in the stream after a 200 is the provider's error, retried, then the step fails with it", async () => {
    const key = await apiKeyFor("t-llm-stream-error");
    const seen = scriptedProvider(stream('{"error":{"message":"overloaded"}}'));
    const run = await finished(await agent(key, { goal: "anything" }), key);
    expect(run.status).toBe("failed");
    expect(await turnFailure(run, key)).toMatchObject({ code: "provider_error", retryable: true });
    expect(run.execution_log[0]?.error).toMatch(/Provider reported an error: overloaded/);
    // The client's own retries (three tries of the one attempt allowed here).
    expect(seen).toHaveLength(3);
  });

  it("an answer beside an error field that says nothing (false, 0, empty) is an answer", async () => {
    const key = await apiKeyFor("t-llm-error-false");
    for (const error of [false, 0, "", {}, null]) {
      scriptedProvider(json(JSON.stringify({ error, choices: [{ message: { role: "assistant", content: "fine" } }] })));
      const run = await finished(await agent(key, { goal: "anything" }), key);
      expect(run.status, JSON.stringify(error)).toBe("completed");
      expect(run.result).toMatchObject({ answer: "fine" });
    }
  });

  it("an empty answer and a content-filter refusal fail the step; neither passes as an empty answer", async () => {
    const key = await apiKeyFor("t-llm-empty");
    const message = (content: string, finish: string) =>
      json(
        JSON.stringify({
          choices: [{ message: { role: "assistant", content }, finish_reason: finish }],
          usage: { prompt_tokens: 5, completion_tokens: 0 },
        }),
      );
    for (const [turn, code] of [
      [message("", "stop"), "bad_response"],
      [message(" \n ", "stop"), "bad_response"],
      [message("", "content_filter"), "refused"],
      [stream('{"choices":[{"delta":{},"finish_reason":"content_filter"}]}'), "refused"],
      [stream('{"choices":[{"delta":{"content":""}}]}'), "bad_response"],
    ] as const) {
      scriptedProvider(turn);
      const run = await finished(await agent(key, { goal: "anything" }), key);
      expect(run.status, code).toBe("failed");
      expect(await turnFailure(run, key), code).toMatchObject({ code, retryable: false });
    }
  });
});

describe("what a call costs and when it is retried", () => {
  it("a provider that reports no usage is charged an estimate, so max_tokens still binds", async () => {
    const key = await apiKeyFor("t-llm-no-usage");
    const calc: Turn = { tool_calls: [{ name: "calculator", arguments: { expression: "1+1" } }], usage: null };
    scriptedProvider(calc, calc, calc, { answer: "done", usage: null });
    const run = await finished(await agent(key, { goal: "add", max_tokens: 200 }), key);
    expect(run.status).toBe("failed");
    expect(run.execution_log[0]?.error).toMatch(/agent budget exhausted: .* went over max_tokens/);
    const turn = (await eventsOf(run.run_id, key)).find((e) => e.type === "agent.turn");
    // About a token per 4 bytes of the request: the tools' schemas alone are thousands of bytes.
    expect(turn?.data?.tokens as number).toBeGreaterThan(200);
  });

  it("parallel agent steps share the day's budget: together they spend at most it plus one call", async () => {
    // This project's day is 10000 tokens; each turn reports 3000. Checked one by one, the ten
    // steps of one run would each see the whole day and spend 30000 together.
    const key = await apiKeyFor("t-llm-parallel-budget");
    scriptedProvider({ answer: "done", tokens: 3000 });
    const steps = Array.from({ length: 10 }, (_, i) => ({
      step_number: i + 1,
      tool_name: "agent",
      tool_input: { goal: `task ${i}` },
    }));
    // One attempt each: a turn that waits for the others' holds to settle does not spend it.
    const res = await post(key, {
      prompt: "ten agents",
      plan: { steps },
      options: { on_failure: "continue", max_attempts: 1 },
    });
    const run = (await waitForRun(((await res.json()) as Run).run_id, 60_000, 50, key)) as Run;
    const events = await eventsOf(run.run_id, key);
    const spent = events.filter((e) => e.type === "agent.turn").reduce((n, e) => n + (e.data?.tokens as number), 0);
    expect(spent).toBeGreaterThanOrEqual(3000);
    expect(spent).toBeLessThan(10_000 + 3000);
    // Those that waited took turns; the ones that found the day spent say so. None failed for
    // having waited (budget_busy), though each had a single attempt.
    const refused = run.execution_log.filter((s) => s.status === "failed");
    expect(refused.length).toBeGreaterThan(0);
    for (const s of refused) expect(s.error).toMatch(/budget_exhausted/);
    expect(run.execution_log.filter((s) => s.status === "succeeded").length).toBeGreaterThanOrEqual(3);
  });

  it("a 429 whose Retry-After is long ends the call; the turn's retry waits at least that long", async () => {
    const key = await apiKeyFor("t-llm-retry-after");
    const seen = scriptedProvider({ status: 429, headers: { "Retry-After": "30" } }, { answer: "ok" });
    const created = await agent(key, { goal: "anything" }, { max_attempts: 2 });
    const events = await eventually(
      "the turn's retry to be scheduled",
      () => eventsOf(created.run_id, key),
      (es) => es.some((e) => e.type === "agent.turn_retry_scheduled"),
    );
    const retry = events.find((e) => e.type === "agent.turn_retry_scheduled");
    expect(retry?.data).toMatchObject({ reason: "http_status" });
    expect(retry?.data?.delay_ms as number).toBeGreaterThanOrEqual(30_000);
    // One try only: the client does not spend its tries inside a wait the provider asked for.
    expect(seen).toHaveLength(1);
    expect((await api(`/api/v1/runs/${created.run_id}/cancel`, { method: "POST", key })).status).toBe(200);
  });

  it("a 429 whose Retry-After is short is waited out before the client's next try", async () => {
    const key = await apiKeyFor("t-llm-retry-short");
    const at: number[] = [];
    const timed = (respond: () => Response): Turn => ({
      respond: () => {
        at.push(Date.now());
        return respond();
      },
    });
    scriptedProvider(
      timed(() => new Response(null, { status: 429, headers: { "Retry-After": "1" } })),
      timed(() => Response.json({ choices: [{ message: { role: "assistant", content: "ok" } }] })),
    );
    const run = await finished(await agent(key, { goal: "anything" }), key);
    expect(run.status).toBe("completed");
    expect(at).toHaveLength(2);
    expect((at[1] as number) - (at[0] as number)).toBeGreaterThanOrEqual(1000);
  });
});

describe("a turn's tool calls are bounded", () => {
  it("more than 16 calls in one turn: the first 16 are made, the rest counted, and the model told in one note", async () => {
    const key = await apiKeyFor("t-llm-flood");
    const many = Array.from({ length: 40 }, (_, i) => ({ name: "calculator", arguments: { expression: `${i}+1` } }));
    const seen = scriptedProvider({ tool_calls: many }, { answer: "enough" });
    const run = await finished(await agent(key, { goal: "flood" }), key);
    expect(run.status).toBe("completed");
    expect(run.execution_log[0]?.calls).toHaveLength(16);
    const events = await eventsOf(run.run_id, key);
    expect(events.find((e) => e.type === "agent.turn")?.data).toMatchObject({ calls_refused: 24 });
    expect(events.filter((e) => e.type.startsWith("agent.call_")).length).toBeLessThanOrEqual(16 * 3);
    const notes = seen[1]?.body.messages.filter((m) => m.role === "user" && /were not run/.test(m.content ?? ""));
    expect(notes?.map((m) => m.content)).toEqual([
      "(24 more tool calls of that turn were not run: at most 16 per turn.)",
    ]);
  });

  it("a tool named twice in `tools` is offered to the model once", async () => {
    const key = await apiKeyFor("t-llm-dup-tools");
    const seen = scriptedProvider({ answer: "hi" });
    const run = await finished(await agent(key, { goal: "greet", tools: ["calculator", "calculator", "text"] }), key);
    expect(run.status).toBe("completed");
    expect(seen[0]?.body.tools?.map((t) => t.function.name)).toEqual(["calculator", "text"]);
  });
});

describe("live text of a failed try", () => {
  it("a try that timed out mid-answer is dropped by watchers: the next try's text comes marked reset", async () => {
    const key = await apiKeyFor("t-llm-delta-reset");
    const encoder = new TextEncoder();
    // The first try writes "AAA" and then nothing until the client gives up (300 ms a try here).
    const stalled: Turn = {
      respond: (init) =>
        new Response(
          new ReadableStream({
            start(controller) {
              init?.signal?.addEventListener("abort", () =>
                controller.error(new DOMException("aborted", "AbortError")),
              );
              controller.enqueue(
                encoder.encode(`data: ${JSON.stringify({ choices: [{ delta: { content: "AAA" } }] })}\n\n`),
              );
            },
          }),
          { headers: { "Content-Type": "text/event-stream" } },
        ),
    };
    scriptedProvider(stalled, { answer: "final", chunks: ["fi", "nal"] });
    const messages = await watchAgentAfterApproval(key);
    const deltas = messages.flatMap((m) => (m.type === "delta" ? [m] : []));
    // What a watcher shows: each reset starts over.
    const shown = deltas.reduce((text, d) => (d.reset ? "" : text) + d.text, "");
    expect(shown).toBe("final");
    expect(deltas.find((d) => d.text.startsWith("fi"))?.reset).toBe(true);
  });

  it("a try that wrote text and failed is followed by an empty reset, even when no try writes again", async () => {
    const provider = llmProvider(env) as LlmProvider;
    const encoder = new TextEncoder();
    // The connection is lost once the first chunk was read.
    let pulls = 0;
    const broken: Turn = {
      respond: () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              if (pulls++ > 0) return controller.error(new TypeError("Network connection lost"));
              controller.enqueue(
                encoder.encode(`data: ${JSON.stringify({ choices: [{ delta: { content: "AAA" } }] })}\n\n`),
              );
            },
          }),
          { headers: { "Content-Type": "text/event-stream" } },
        ),
    };
    // The next try answers with a tool call: it writes no text.
    const seen = scriptedProvider(broken, { tool_calls: [{ name: "calculator", arguments: { expression: "1" } }] });
    const pieces: [string, boolean][] = [];
    const answer = await chat(provider, [{ role: "user", content: "hi" }], {
      maxTokens: 10,
      onDelta: (text, reset) => pieces.push([text, reset === true]),
    });
    // A connection lost mid-answer is a network failure, retried (it was not retried before).
    expect(seen).toHaveLength(2);
    expect(answer.toolCalls.map((c) => c.name)).toEqual(["calculator"]);
    expect(pieces).toEqual([
      ["AAA", true],
      ["", true],
    ]);
  });
});
