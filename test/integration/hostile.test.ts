import { listDurableObjectIds } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Problem } from "../../src/contracts/common";
import type { Run } from "../../src/contracts/run";
import { api, createRun, waitForRun } from "../helpers/api";

/** How many run coordinators exist: a rejected request must not have created one. */
const coordinators = async () => (await listDurableObjectIds(env.RUNS)).length;

const step = (tool_name: string, tool_input: unknown, extra: Record<string, unknown> = {}) => ({
  step_number: 1,
  tool_name,
  tool_input,
  ...extra,
});
const plan = (...steps: unknown[]) => ({ prompt: "hostile plan", plan: { steps } });
const calc = (expression: unknown) => plan(step("calculator", { expression }));

type Case = [name: string, request: () => Promise<Response>, status: number, detail?: RegExp];
const postJson = (json: unknown, headers: Record<string, string> = {}) =>
  api("/api/v1/runs", { method: "POST", json, headers });
const postRaw = (body: string, contentType = "application/json") =>
  api("/api/v1/runs", { method: "POST", body, headers: { "Content-Type": contentType } });

const REJECTED: Case[] = [
  // Bodies
  ["empty body", () => postRaw(""), 400],
  ["truncated JSON", () => postRaw('{"prompt": "x"'), 400],
  ["JSON null", () => postRaw("null"), 422],
  ["JSON array", () => postRaw("[1,2,3]"), 422],
  ["JSON string", () => postRaw('"calculate 1"'), 422],
  ["prompt missing", () => postJson({ planner: "rules" }), 422, /prompt is required/],
  ["prompt empty", () => postJson({ prompt: "" }), 422, /prompt must not be empty/],
  ["prompt whitespace", () => postJson({ prompt: " \n\t " }), 422, /prompt must not be empty/],
  ["prompt number", () => postJson({ prompt: 42 }), 422],
  ["prompt object", () => postJson({ prompt: { toString: "x" } }), 422],
  ["prompt 2001 chars", () => postJson({ prompt: "a".repeat(2001) }), 422, /at most 2000/],
  ["__proto__ key", () => postRaw('{"prompt":"hi","__proto__":{"admin":true}}'), 422],
  ["constructor key", () => postJson({ prompt: "hi", constructor: { prototype: {} } }), 422],
  ["unknown planner", () => postJson({ prompt: "hi", planner: "gpt" }), 422],
  ["max_parallel 0", () => postJson({ prompt: "hi", options: { max_parallel: 0 } }), 422],
  ["max_parallel 1e9", () => postJson({ prompt: "hi", options: { max_parallel: 1e9 } }), 422],
  ["step_timeout_ms negative", () => postJson({ prompt: "hi", options: { step_timeout_ms: -1 } }), 422],
  ["max_attempts float", () => postJson({ prompt: "hi", options: { max_attempts: 2.5 } }), 422],
  ["options string", () => postJson({ prompt: "hi", options: "fast" }), 422],
  ["body over 256 KiB", () => postJson({ prompt: "hi", pad: "x".repeat(262_145) }), 413],
  ["text/plain body", () => postRaw('{"prompt":"hi"}', "text/plain"), 415],
  ["form body", () => postRaw("prompt=hi", "application/x-www-form-urlencoded"), 415],
  // Explicit plans
  ["plan with no steps", () => postJson({ prompt: "x", plan: { steps: [] } }), 422],
  ["plan steps not an array", () => postJson({ prompt: "x", plan: { steps: {} } }), 422],
  [
    "51 steps",
    () =>
      postJson(
        plan(
          ...Array.from({ length: 51 }, (_, i) => ({ ...step("calculator", { expression: "1" }), step_number: i + 1 })),
        ),
      ),
    422,
  ],
  ["step_number 0", () => postJson(plan({ ...step("calculator", { expression: "1" }), step_number: 0 })), 422],
  ["step_number negative", () => postJson(plan({ ...step("calculator", { expression: "1" }), step_number: -1 })), 422],
  ["step_number float", () => postJson(plan({ ...step("calculator", { expression: "1" }), step_number: 1.5 })), 422],
  [
    "duplicate step numbers",
    () => postJson(plan(step("calculator", { expression: "1" }), step("calculator", { expression: "2" }))),
    422,
    /used twice/,
  ],
  ["unknown tool", () => postJson(plan(step("shell", { cmd: "rm -rf /" }))), 422, /unknown tool 'shell'/],
  ["tool named __proto__", () => postJson(plan(step("__proto__", {}))), 422, /unknown tool/],
  ["tool named constructor", () => postJson(plan(step("constructor", {}))), 422, /unknown tool/],
  ["tool named toString", () => postJson(plan(step("toString", {}))), 422, /unknown tool/],
  ["tool_input not an object", () => postJson(plan(step("calculator", "1+1"))), 422],
  [
    "tool_input over 16 KiB",
    () => postJson(plan(step("text", { operation: "trim", text: "x".repeat(17_000) }))),
    422,
    /16384 bytes/,
  ],
  [
    "depends on itself",
    () => postJson(plan(step("calculator", { expression: "1" }, { depends_on: [1] }))),
    422,
    /itself/,
  ],
  [
    "depends on a missing step",
    () => postJson(plan(step("calculator", { expression: "1" }, { depends_on: [9] }))),
    422,
    /does not exist/,
  ],
  [
    "references itself",
    () => postJson(plan(step("calculator", { expression: "{{steps.1.output}}" }))),
    422,
    /own output/,
  ],
  [
    "references a missing step",
    () => postJson(plan(step("calculator", { expression: "{{steps.7.output}}" }))),
    422,
    /does not exist/,
  ],
  [
    "a two-step cycle",
    () =>
      postJson(
        plan(
          { ...step("calculator", { expression: "1" }), depends_on: [2] },
          { ...step("calculator", { expression: "{{steps.1.output}}" }), step_number: 2 },
        ),
      ),
    422,
    /cycle/,
  ],
  ["extra key on a step", () => postJson(plan(step("calculator", { expression: "1" }, { run_as: "root" }))), 422],
  // Calculator expressions rejected by the tool's schema
  ["expression over 500 chars", () => postJson(calc(`1${"+1".repeat(300)}`)), 422],
  ["expression empty", () => postJson(calc("")), 422],
  ["expression not a string", () => postJson(calc({ valueOf: 1 })), 422],
  ["extra calculator field", () => postJson(plan(step("calculator", { expression: "1", scope: { x: 1 } }))), 422],
  // Todo texts
  ["todo text empty", () => postJson(plan(step("todo_store", { action: "add", text: "" }))), 422],
  ["todo text 1001 chars", () => postJson(plan(step("todo_store", { action: "add", text: "t".repeat(1001) }))), 422],
  ["todo action unknown", () => postJson(plan(step("todo_store", { action: "drop_table" }))), 422],
  ["todo id too long", () => postJson(plan(step("todo_store", { action: "get", todo_id: "i".repeat(65) }))), 422],
  // URLs rejected by the tool's schema
  ["url empty", () => postJson(plan(step("http_get", { url: "" }))), 422],
  [
    "url over 2048 chars",
    () => postJson(plan(step("http_get", { url: `https://api.example.com/${"a".repeat(2100)}` }))),
    422,
  ],
  // Queries
  ["events after=-1", () => api("/api/v1/runs/x/events?after=-1"), 400, /after must be/],
  ["events after=1e999", () => api("/api/v1/runs/x/events?after=1e999"), 400, /after must be/],
  ["events limit=0", () => api("/api/v1/runs/x/events?limit=0"), 400, /limit must be/],
  ["list limit=101", () => api("/api/v1/runs?limit=101"), 400, /limit must be an integer between 1 and 100/],
  ["list offset=-1", () => api("/api/v1/runs?offset=-1"), 400, /offset must be/],
  ["list since garbage", () => api("/api/v1/runs?since=%00%00"), 400, /since must be/],
  ["list status unknown", () => api("/api/v1/runs?status=hacked"), 400],
  ["list forged cursor", () => api(`/api/v1/runs?cursor=${btoa('{"c":1}')}`), 400, /cursor is not valid/],
  [
    "metrics until before since",
    () => api("/api/v1/metrics?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z"),
    400,
  ],
  // Like any value that is not a run id: nothing by that name (docs/api.md, Conventions).
  ["run id too long", () => api(`/api/v1/runs/${"r".repeat(65)}`), 404, /^Run 'r{64}…' not found$/],
  // Headers
  ["no Authorization", () => api("/api/v1/runs", { method: "POST", key: null, json: { prompt: "hi" } }), 401],
  ["Basic auth", () => api("/api/v1/runs", { key: null, headers: { Authorization: "Basic Y3JhbmU6ZGV2" } }), 401],
  ["empty bearer", () => api("/api/v1/runs", { key: null, headers: { Authorization: "Bearer " } }), 401],
  ["oversized key", () => api("/api/v1/runs", { key: "k".repeat(10_000) }), 401],
  ["SQL in the key", () => api("/api/v1/runs", { key: "' OR '1'='1" }), 401],
  ["Idempotency-Key too long", () => postJson({ prompt: "hi" }, { "Idempotency-Key": "k".repeat(256) }), 400],
  ["Idempotency-Key with control chars", () => postJson({ prompt: "hi" }, { "Idempotency-Key": "a\u0001b" }), 400],
  [
    "WebSocket upgrade without a key",
    () => api("/api/v1/runs/x/live", { key: null, headers: { Upgrade: "websocket" } }),
    401,
  ],
  [
    "WebSocket subprotocol with a wrong key",
    () =>
      api("/api/v1/runs/x/live", {
        key: null,
        headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "bearer.nope" },
      }),
    401,
  ],
];

describe("hostile input: rejected with the exact status, nothing written", () => {
  it.each(REJECTED)("%s → %i", async (_name, request, status, detail) => {
    const before = await coordinators();
    const res = await request();
    expect(res.status).toBe(status);
    expect(res.headers.get("Content-Type")).toBe("application/problem+json");
    const problem = (await res.json()) as Problem;
    expect(problem.status).toBe(status);
    if (detail) expect(problem.detail).toMatch(detail);
    expect(await coordinators()).toBe(before);
  });
});

describe("hostile input: accepted, and handled safely", () => {
  it.each([
    ["calculate __proto__", /Could not parse prompt/],
    ["calculate constructor.constructor('return process')()", /Could not parse prompt/],
    ["what is process.exit()", /Could not parse prompt/],
    ["compute (1).constructor", /Could not parse prompt/],
    ["\u202Ecalculate 1+1\u202C", /Could not parse prompt/],
    ["<script>alert(1)</script>", /Could not parse prompt/],
  ])("prompt %j fails the run with %s, not the server", async (prompt, error) => {
    const run = await createRun({ prompt });
    expect(run.status).toBe("failed");
    expect(run.error).toMatch(error);
  });

  it.each([
    ["9^9^9", "Result is too large (not finite)"],
    ["10^400", "Result is too large (not finite)"],
    ["(1).constructor.constructor('return process')()", "Unexpected character '.' at position 4"],
    [`${"(".repeat(200)}1${")".repeat(200)}`, "Expression is nested too deeply (more than 64 levels)"],
    ["__proto__", "Unknown name '__proto__' at position 1"],
  ])("calculator %j fails the step without retry: %s", async (expression, message) => {
    const run = await waitForRun((await createRun(calc(expression))).run_id);
    expect(run.status).toBe("failed");
    expect(run.execution_log[0]).toMatchObject({ status: "failed", attempts: 1, error: message });
  });

  it.each([
    "'; DROP TABLE todos; --",
    "Robert'); DELETE FROM api_keys;--",
    "<img src=x onerror=alert(1)>",
    "🦀 unicode ✓ \u0000 nul",
  ])("stores the todo text %j verbatim and the tables survive", async (text) => {
    const run = await waitForRun((await createRun(plan(step("todo_store", { action: "add", text })))).run_id);
    expect(run.status).toBe("completed");
    expect((run.result as { todo: { text: string } }).todo.text).toBe(text);
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM todos").first<{ n: number }>();
    expect(count?.n).toBeGreaterThan(0);
  });

  it("looks up a todo id made of SQL as a plain id", async () => {
    const run = await waitForRun(
      (await createRun(plan(step("todo_store", { action: "get", todo_id: "' OR 1=1 --" })))).run_id,
    );
    expect(run.execution_log[0]).toMatchObject({
      status: "failed",
      attempts: 1,
      error: "Todo '' OR 1=1 --' not found",
    });
  });

  it.each([
    ["http://api.example.com/", "Only https URLs are allowed, not http:"],
    ["https://127.0.0.1/admin", "IP address literals are not allowed; use a host name"],
    ["https://evil.test/", "Host 'evil.test' is not on the http_get allowlist (HTTP_GET_ALLOWLIST)"],
  ])("http_get %s fails the step without a request and without retry", async (url, error) => {
    const run = await waitForRun((await createRun(plan(step("http_get", { url })))).run_id);
    expect(run.execution_log[0]).toMatchObject({ status: "failed", attempts: 1, error });
  });

  it("accepts at most 100 live connections per run, then answers 429", async () => {
    const created = await createRun(plan(step("sleep", { ms: 3000 })));
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await api(`/api/v1/runs/${created.run_id}/live`, { headers: { Upgrade: "websocket" } });
      expect(res.status).toBe(101);
      const ws = res.webSocket as WebSocket;
      ws.accept();
      sockets.push(ws);
    }
    const refused = await api(`/api/v1/runs/${created.run_id}/live`, { headers: { Upgrade: "websocket" } });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as Problem).detail).toBe("A run accepts at most 100 live connections");
    for (const ws of sockets) ws.close(1000, "done");
  });

  it("ignores whatever a client sends on the live socket", async () => {
    const created = await createRun(plan(step("sleep", { ms: 300 })));
    const res = await api(`/api/v1/runs/${created.run_id}/live?after=0`, { headers: { Upgrade: "websocket" } });
    const ws = res.webSocket as WebSocket;
    ws.accept();
    const got: string[] = [];
    const closed = new Promise<number>((resolve) => ws.addEventListener("close", (e) => resolve(e.code)));
    ws.addEventListener("message", (e) => got.push(String(e.data)));
    ws.send("ping");
    ws.send('{"type":"cancel"}');
    ws.send("x".repeat(100_000));
    ws.send(new Uint8Array([0, 1, 2, 255]));
    expect(await closed).toBe(1000);
    expect(got).toContain("pong");
    expect(
      got
        .filter((m) => m !== "pong")
        .map((m) => (JSON.parse(m) as { type: string }).type)
        .at(-1),
    ).toBe("event");
    expect(((await (await api(`/api/v1/runs/${created.run_id}`)).json()) as Run).status).toBe("completed");
  });
});

describe("property-based: no input makes a 500", () => {
  it("random JSON bodies to POST /runs get 201, 400, 413, 415 or 422 — never 500", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (body) => {
        const res = await api("/api/v1/runs", { method: "POST", json: body });
        expect([201, 400, 413, 415, 422]).toContain(res.status);
        await res.body?.cancel();
      }),
      { numRuns: 150 },
    );
  });

  it("random bodies shaped like a run request never make a 500", async () => {
    const shaped = fc.record(
      {
        prompt: fc.oneof(fc.string({ maxLength: 50 }), fc.constant("calculate 1 + 1")),
        plan: fc.option(
          fc.record({
            steps: fc.array(
              fc.record(
                {
                  step_number: fc.integer(),
                  tool_name: fc.constantFrom("calculator", "text", "x"),
                  tool_input: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })),
                  depends_on: fc.array(fc.integer({ min: -2, max: 5 }), { maxLength: 3 }),
                },
                { requiredKeys: ["step_number", "tool_name", "tool_input"] },
              ),
              { maxLength: 4 },
            ),
          }),
        ),
        options: fc.option(
          fc.dictionary(
            fc.constantFrom("max_parallel", "max_attempts", "on_failure", "x"),
            fc.jsonValue({ maxDepth: 1 }),
          ),
        ),
      },
      { requiredKeys: ["prompt"] },
    );
    await fc.assert(
      fc.asyncProperty(shaped, async (body) => {
        const res = await api("/api/v1/runs", { method: "POST", json: body });
        expect([201, 422]).toContain(res.status);
        await res.body?.cancel();
      }),
      { numRuns: 150 },
    );
  });

  it("random query strings never make a 500", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom("limit", "offset", "cursor", "status", "tool", "since", "until", "q"),
          fc.string({ maxLength: 30 }),
        ),
        async (params) => {
          const res = await api(`/api/v1/runs?${new URLSearchParams(params)}`);
          expect([200, 400]).toContain(res.status);
          await res.body?.cancel();
        },
      ),
      { numRuns: 150 },
    );
  });
});
