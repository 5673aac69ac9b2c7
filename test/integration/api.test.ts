import { describe, expect, it } from "vitest";
import apiDoc from "../../docs/api.md?raw";
import readme from "../../README.md?raw";
import type { Problem } from "../../src/contracts/common";
import { api, createRun } from "../helpers/api";

async function problem(res: Response, status: number): Promise<Problem> {
  expect(res.status).toBe(status);
  expect(res.headers.get("Content-Type")).toBe("application/problem+json");
  const body = (await res.json()) as Problem;
  expect(body.status).toBe(status);
  expect(typeof body.title).toBe("string");
  expect(typeof body.type).toBe("string");
  return body;
}

const post = (json: unknown) => api("/api/v1/runs", { method: "POST", json });

describe("API: bad bodies get 422 problem+json and create nothing", () => {
  it.each([
    [{ prompt: "" }, "prompt", /prompt must not be empty/],
    [{ prompt: "   " }, "prompt", /prompt must not be empty/],
    [{}, "prompt", /prompt is required/],
    [{ prompt: 5 }, "prompt", /prompt is required and must be a string/],
    [{ prompt: "x".repeat(2001) }, "prompt", /at most 2000 characters/],
    [{ prompt: "hi", planner: "magic" }, "planner", /expected one of "auto"\|"rules"\|"llm"/],
    [{ prompt: "hi", options: { max_parallel: 0 } }, "options.max_parallel", /expected number to be >=1/],
    [{ prompt: "hi", options: { step_timeout_ms: 10 } }, "options.step_timeout_ms", /expected number to be >=100/],
    [
      { prompt: "hi", options: { on_failure: "ignore" } },
      "options.on_failure",
      /"fail_fast"\|"continue"\|"compensate"/,
    ],
    [{ prompt: "hi", extra: true }, "", /extra/],
    [{ prompt: "hi", plan: { steps: [] } }, "plan.steps", /expected array to have >=1 items/],
  ])("%j → 422 naming %s", async (body, path, message) => {
    const p = await problem(await post(body), 422);
    expect(p.errors?.[0]?.path).toBe(path);
    expect(p.errors?.[0]?.message).toMatch(message);
    expect(p.detail).toMatch(/^Invalid request body: /);
  });

  it("rejects an invalid explicit plan with every problem listed", async () => {
    const p = await problem(
      await post({
        prompt: "bad plan",
        plan: {
          steps: [
            { step_number: 1, tool_name: "nope", tool_input: {} },
            { step_number: 2, tool_name: "calculator", tool_input: { expression: "{{steps.9.output}}" } },
          ],
        },
      }),
      422,
    );
    expect(p.errors).toEqual([
      { path: "plan.steps[0].tool_name", message: expect.stringContaining("unknown tool 'nope'") },
      { path: "plan.steps[1].tool_input", message: "reference to step 9, which does not exist" },
    ]);
    expect(p.detail).toMatch(/^Invalid plan: plan.steps\[0\].tool_name: unknown tool 'nope'.*\(and 1 more problem\)$/);
  });

  it("rejects a cyclic plan", async () => {
    const p = await problem(
      await post({
        prompt: "cycle",
        plan: {
          steps: [
            { step_number: 1, tool_name: "calculator", tool_input: { expression: "1" }, depends_on: [2] },
            { step_number: 2, tool_name: "calculator", tool_input: { expression: "2" }, depends_on: [1] },
          ],
        },
      }),
      422,
    );
    expect(p.detail).toMatch(/dependency cycle/);
  });

  it("rejects more than 50 steps", async () => {
    const steps = Array.from({ length: 51 }, (_, i) => ({
      step_number: i + 1,
      tool_name: "calculator",
      tool_input: { expression: "1" },
    }));
    const p = await problem(await post({ prompt: "big", plan: { steps } }), 422);
    expect(p.errors?.[0]?.path).toBe("plan.steps");
  });

  it("answers malformed JSON with 400", async () => {
    const res = await api("/api/v1/runs", {
      method: "POST",
      body: "{ not json",
      headers: { "Content-Type": "application/json" },
    });
    expect((await problem(res, 400)).detail).toBe("Request body is not valid JSON");
  });

  it("answers a non-JSON body with 415", async () => {
    const res = await api("/api/v1/runs", {
      method: "POST",
      body: "prompt=hi",
      headers: { "Content-Type": "text/plain" },
    });
    await problem(res, 415);
  });

  it.each([
    ["application/jsonpfoo", "Content-Type 'application/jsonpfoo' is not JSON"],
    ["application/json-seq", "Content-Type 'application/json-seq' is not JSON"],
    ["application/vnd.api+json", "Content-Type 'application/vnd.api+json' is not JSON"],
    ["text/json", "Content-Type 'text/json' is not JSON"],
    ["application/json; charset", "Content-Type 'application/json' is not JSON"],
    ["application/json;;charset=utf-8", "Content-Type 'application/json' is not JSON"],
    ["application/json; charset=latin1", "Request body must be UTF-8 JSON: charset 'latin1' is not accepted"],
    ['application/json; charset="utf-16"', "Request body must be UTF-8 JSON: charset 'utf-16' is not accepted"],
  ])("answers Content-Type %j with 415 saying why, and creates nothing", async (type, detail) => {
    const res = await api("/api/v1/runs", {
      method: "POST",
      body: JSON.stringify({ prompt: "calculate 1" }),
      headers: { "Content-Type": type },
    });
    expect((await problem(res, 415)).detail).toContain(detail);
    // An optional body sent empty is held to the same rule when it names a type.
    const cancel = await api("/api/v1/runs/01a21900-0000-7000-8000-000000000000/cancel", {
      method: "POST",
      body: "",
      headers: { "Content-Type": type },
    });
    expect((await problem(cancel, 415)).detail).toContain(detail);
  });

  it.each([
    "application/json",
    "Application/JSON",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    'application/json; charset="utf-8"',
    "application/json; profile=crane",
  ])("takes Content-Type %j as JSON", async (type) => {
    const res = await api("/api/v1/runs", {
      method: "POST",
      body: JSON.stringify({ prompt: "calculate 1 + 1" }),
      headers: { "Content-Type": type },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(((await res.json()) as { result: unknown }).result).toBe(2);
  });

  it("answers a body without a Content-Type with 415, and takes an empty optional body without one", async () => {
    const res = await api("/api/v1/runs", { method: "POST", body: new TextEncoder().encode('{"prompt":"hi"}') });
    expect((await problem(res, 415)).detail).toBe("Request body must be JSON: send 'Content-Type: application/json'");
    const run = await createRun({ prompt: "calculate 2 * 3" });
    const rerun = await api(`/api/v1/runs/${run.run_id}/rerun`, { method: "POST" });
    expect(rerun.status).toBe(201);
  });

  it("answers an oversize body with 413", async () => {
    const res = await post({ prompt: "hi", padding: "x".repeat(300 * 1024) });
    expect((await problem(res, 413)).detail).toMatch(/at most 262144 bytes/);
  });
});

describe("API: routing, auth and headers", () => {
  it("answers an unknown run with 404 problem+json", async () => {
    const p = await problem(await api("/api/v1/runs/does-not-exist"), 404);
    expect(p.detail).toBe("Run 'does-not-exist' not found");
    await problem(await api("/api/v1/runs/does-not-exist/events"), 404);
    await problem(await api("/api/v1/runs/does-not-exist/cancel", { method: "POST" }), 404);
  });

  it("answers an unknown route with 404 and a wrong method with 405", async () => {
    await problem(await api("/api/v1/nope"), 404);
    const res = await api("/api/v1/runs/abc", { method: "DELETE" });
    await problem(res, 405);
    expect(res.headers.get("Allow")).toBe("GET, HEAD");
    // HEAD is served where GET is, as Allow says.
    expect((await api("/api/v1/runs", { method: "HEAD" })).status).toBe(200);
  });

  it("requires an API key", async () => {
    const missing = await problem(await api("/api/v1/runs/x", { key: null }), 401);
    expect(missing.detail).toMatch(/Missing API key/);
    const unknown = await problem(
      await api("/api/v1/runs", { method: "POST", key: "wrong", json: { prompt: "hi" } }),
      401,
    );
    expect(unknown.detail).toBe("Unknown API key");
    await problem(await api("/api/v1/tools", { key: null }), 401);
  });

  it("validates query parameters with 400 naming them", async () => {
    const run = await createRun({ prompt: "calculate 1" });
    for (const q of ["after=-1", "after=abc", "limit=0", "limit=1001", "after=9007199254740992"]) {
      const p = await problem(await api(`/api/v1/runs/${run.run_id}/events?${q}`), 400);
      expect(p.detail).toMatch(new RegExp(`^${q.split("=")[0]} must be`));
    }
    // The whole range the OpenAPI document gives (0 to 2^53 - 1), its largest value included.
    for (const after of ["1000000000000000", "9007199254740991"]) {
      const res = await api(`/api/v1/runs/${run.run_id}/events?after=${after}`);
      expect(res.status, after).toBe(200);
      expect(await res.json()).toEqual([]);
    }
  });

  it("echoes X-Request-Id, or makes one", async () => {
    const echoed = await api("/api/v1/health", { headers: { "X-Request-Id": "req-123" } });
    expect(echoed.headers.get("X-Request-Id")).toBe("req-123");
    const made = await api("/api/v1/runs/nope");
    expect(made.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("keeps the trace id of an incoming traceparent on the run", async () => {
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const res = await api("/api/v1/runs", {
      method: "POST",
      json: { prompt: "calculate 1 + 2" },
      headers: { traceparent: `00-${trace}-00f067aa0ba902b7-01` },
    });
    const { run_id } = (await res.json()) as { run_id: string };
    const events = (await (await api(`/api/v1/runs/${run_id}/events`)).json()) as { data?: { trace_id?: string } }[];
    expect(events[0]?.data?.trace_id).toBe(trace);
  });
});

describe("API: catalog, health and OpenAPI", () => {
  it("lists the tools with JSON Schemas", async () => {
    const res = await api("/api/v1/tools");
    expect(res.status).toBe(200);
    const tools = (await res.json()) as { name: string; input_schema: { type?: string; properties?: object } }[];
    expect(tools.map((t) => t.name).sort()).toEqual([
      "agent",
      "approval",
      "calculator",
      "http_get",
      "llm",
      "signal",
      "sleep",
      "text",
      "todo_store",
      "wait",
    ]);
    // MCP tool schemas and OpenAI function parameters need an object at the top.
    for (const tool of tools) expect(tool.input_schema.type, tool.name).toBe("object");
    const todo = tools.find((t) => t.name === "todo_store")?.input_schema as {
      oneOf?: { properties: { action: { const: string } } }[];
    };
    expect(todo.oneOf?.map((o) => o.properties.action.const)).toEqual([
      "add",
      "list",
      "get",
      "complete",
      "reopen",
      "delete",
    ]);
    const calculator = tools.find((t) => t.name === "calculator");
    expect(calculator?.input_schema).toMatchObject({
      type: "object",
      properties: { expression: { type: "string", maxLength: 500 } },
    });
  });

  it("reports health without auth", async () => {
    const res = await api("/api/v1/health", { key: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "healthy",
      checks: { d1: { status: "ok" }, queue: { status: "ok" }, durable_objects: { status: "ok" } },
    });
  });

  it("serves an OpenAPI 3.1 document describing every route", async () => {
    const res = await api("/openapi.json", { key: null });
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      servers: { url: string }[];
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.openapi).toBe("3.1.0");
    // The serving Crane, so that /docs' examples name a full URL.
    expect(doc.servers).toEqual([{ url: "http://crane.test", description: "This Crane" }]);
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/api/v1/admin/api-keys",
      "/api/v1/admin/api-keys/{key_id}",
      "/api/v1/admin/counters",
      "/api/v1/approvals",
      "/api/v1/callbacks/{token}",
      "/api/v1/health",
      "/api/v1/metrics",
      "/api/v1/runs",
      "/api/v1/runs/{run_id}",
      "/api/v1/runs/{run_id}/cancel",
      "/api/v1/runs/{run_id}/events",
      "/api/v1/runs/{run_id}/live",
      "/api/v1/runs/{run_id}/rerun",
      "/api/v1/runs/{run_id}/signals/{name}",
      "/api/v1/runs/{run_id}/steps/{step_number}/approve",
      "/api/v1/runs/{run_id}/steps/{step_number}/reject",
      "/api/v1/tools",
      "/docs",
      "/openapi.json",
    ]);
    expect(Object.keys(doc.paths["/api/v1/runs"] ?? {}).sort()).toEqual(["get", "post"]);
    // docs/api.md, the contract this document describes, names every route.
    // (The benchmark's counters are an operator's route outside the contract.)
    for (const path of Object.keys(doc.paths).filter((p) => p !== "/api/v1/admin/counters")) {
      expect(apiDoc, `docs/api.md names ${path}`).toContain(path);
    }
    // Every route but health and callbacks declares its key; the document says so.
    type Op = { security?: unknown[]; responses: Record<string, unknown> };
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Op>>)) {
      for (const [method, op] of Object.entries(ops)) {
        const open =
          ["/api/v1/health", "/openapi.json", "/docs"].includes(path) || path.startsWith("/api/v1/callbacks/");
        expect(op.security === undefined, `${method} ${path}`).toBe(open);
        if (!open) expect(Object.keys(op.responses), `${method} ${path}`).toContain("401");
      }
    }
  });

  it("documents the 405 every path can answer, with its Allow header, as the server sends it", async () => {
    const doc = (await (await api("/openapi.json", { key: null })).json()) as {
      info: { description: string };
      components: { responses: Record<string, { headers: Record<string, { $ref: string }> }> };
    };
    const notAllowed = doc.components.responses.MethodNotAllowed;
    expect(Object.keys(notAllowed?.headers ?? {})).toEqual(expect.arrayContaining(["Allow", "X-Request-Id"]));
    expect(doc.info.description).toMatch(/405 with `Allow`/);
    const res = await api("/api/v1/tools", { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("Content-Type")).toMatch(/application\/problem\+json/);
    expect(res.headers.get("Allow")).toBe("GET, HEAD");
  });

  type Header = { $ref?: string; schema?: Record<string, unknown> };
  type Param = { $ref?: string; name?: string; in?: string; schema?: Record<string, unknown> };
  type Op = { parameters?: Param[]; responses: Record<string, { headers?: Record<string, Header> }> };
  type Doc = {
    paths: Record<string, Record<string, Op>>;
    components: {
      schemas: Record<string, { required?: string[] }>;
      headers: Record<string, Header>;
      parameters: Record<string, Param>;
    };
  };
  const openapi = async () => (await (await api("/openapi.json", { key: null })).json()) as Doc;
  /** An operation's parameters, references resolved. */
  const paramsOf = (doc: Doc, op: Op | undefined) =>
    (op?.parameters ?? []).map((p) => (p.$ref ? doc.components.parameters[p.$ref.split("/").at(-1) ?? ""] : p));
  const param = (doc: Doc, path: string, method: string, name: string) =>
    paramsOf(doc, doc.paths[path]?.[method]).find((p) => p?.name === name);

  it("says, in docs/api.md and the document, that a rerun of a compensated run re-executes what was undone", async () => {
    const doc = await openapi();
    const rerun = (doc.paths["/api/v1/runs/{run_id}/rerun"]?.post as { description?: string } | undefined)?.description;
    expect(rerun).toMatch(/compensation undid is not reused: it runs again/);
    expect(apiDoc.replace(/\s+/g, " ")).toMatch(/a rerun of a compensated run re-executes what was undone/);
  });

  it("the README's route table says 'no key' of exactly the routes that answer without one", async () => {
    const rows = readme.split("\n").filter((l) => l.startsWith("| `") && l.includes("/api/v1/"));
    const gets = (row: string) => [...row.matchAll(/`GET (\/api\/v1\/[a-z/]+)[?`]/g)].map((m) => m[1] ?? "");
    const open = rows.filter((r) => /\bno key\b/.test(r)).flatMap(gets);
    const keyed = rows.filter((r) => !/\bno key\b/.test(r)).flatMap(gets);
    expect(open).toEqual(["/api/v1/health"]);
    expect(keyed).toEqual(expect.arrayContaining(["/api/v1/tools", "/api/v1/metrics", "/api/v1/approvals"]));
    for (const path of open) expect((await api(path, { key: null })).status, path).toBe(200);
    for (const path of keyed) expect((await api(path, { key: null })).status, path).toBe(401);
  });

  it("the document names Idempotency-Key wherever docs/api.md accepts it, with its limit", async () => {
    const doc = await openapi();
    for (const [path, method] of [
      ["/api/v1/runs", "post"],
      ["/api/v1/runs/{run_id}/rerun", "post"],
      ["/api/v1/runs/{run_id}/signals/{name}", "post"],
    ] as const) {
      const key = param(doc, path, method, "Idempotency-Key");
      expect(key, `${method} ${path}`).toMatchObject({ in: "header", schema: { type: "string" } });
      expect(new RegExp(String(key?.schema?.pattern)).test("x".repeat(255))).toBe(true);
      expect(new RegExp(String(key?.schema?.pattern)).test("x".repeat(256))).toBe(false);
    }
    expect(param(doc, "/api/v1/runs/{run_id}/cancel", "post", "Idempotency-Key")).toBeUndefined();
  });

  it("the document names the headers of every response: request id and trace on all, rate limits, Retry-After, Idempotent-Replayed", async () => {
    const doc = await openapi();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, response] of Object.entries(op.responses)) {
          const names = Object.keys(response.headers ?? {});
          const where = `${method} ${path} ${status}`;
          expect(names, where).toEqual(expect.arrayContaining(["X-Request-Id", "traceparent"]));
          if (status === "429") {
            expect(names, where).toEqual(expect.arrayContaining(["Retry-After", "RateLimit-Policy", "RateLimit"]));
          }
          for (const h of Object.values(response.headers ?? {})) {
            if (h.$ref) expect(doc.components.headers[h.$ref.split("/").at(-1) ?? ""], h.$ref).toBeDefined();
          }
        }
      }
    }
    expect(Object.keys(doc.paths["/api/v1/runs"]?.get?.responses["200"]?.headers ?? {})).toEqual(
      expect.arrayContaining(["RateLimit-Policy", "RateLimit", "Link"]),
    );
    for (const [path, method, status] of [
      ["/api/v1/runs", "post", "201"],
      ["/api/v1/runs/{run_id}/rerun", "post", "201"],
      ["/api/v1/runs/{run_id}/signals/{name}", "post", "202"],
    ] as const) {
      expect(Object.keys(doc.paths[path]?.[method]?.responses[status]?.headers ?? {})).toContain("Idempotent-Replayed");
    }
  });

  it("every header the document promises on a response is on the real one", async () => {
    const doc = await openapi();
    const cases: [string, string, () => Promise<Response>][] = [
      ["/api/v1/runs", "get", () => api("/api/v1/runs")],
      ["/api/v1/runs", "post", () => api("/api/v1/runs", { method: "POST", json: { prompt: "calculate 1" } })],
      ["/api/v1/runs/{run_id}", "get", () => api("/api/v1/runs/nope")],
      ["/api/v1/runs", "get", () => api("/api/v1/runs?limit=0")],
      ["/api/v1/runs", "get", () => api("/api/v1/runs", { key: null })],
      [
        "/api/v1/runs",
        "post",
        () => api("/api/v1/runs", { method: "POST", body: "x", headers: { "Content-Type": "text/plain" } }),
      ],
      ["/api/v1/tools", "get", () => api("/api/v1/tools")],
      ["/api/v1/health", "get", () => api("/api/v1/health", { key: null })],
      ["/api/v1/admin/api-keys", "get", () => api("/api/v1/admin/api-keys?tenant=dev", { key: "crane-dev-admin" })],
    ];
    for (const [path, method, request] of cases) {
      const res = await request();
      const documented = doc.paths[path]?.[method]?.responses[String(res.status)];
      expect(documented, `${method} ${path} ${res.status} is documented`).toBeDefined();
      // Conditional ones: a replay's mark, a next page's link.
      const promised = Object.keys(documented?.headers ?? {}).filter(
        (h) => !["Idempotent-Replayed", "Link"].includes(h),
      );
      for (const h of promised) expect(res.headers.get(h), `${method} ${path} ${res.status}: ${h}`).not.toBeNull();
    }
  });

  it("fields always present are required in the document: result, output", async () => {
    const { components } = await openapi();
    for (const [schema, field] of [
      ["Run", "result"],
      ["RunSummary", "result"],
      ["ExecutionLogEntry", "output"],
      ["CompensationStep", "output"],
      ["AgentCall", "output"],
    ] as const) {
      expect(components.schemas[schema]?.required, `${schema}.${field}`).toContain(field);
    }
    const run = await createRun({ prompt: "calculate 2 + 2" });
    expect(run).toHaveProperty("result", 4);
    for (const entry of run.execution_log) expect(entry).toHaveProperty("output");
    const list = (await (await api("/api/v1/runs?limit=1")).json()) as Record<string, unknown>[];
    expect(list[0]).toHaveProperty("result");
  });

  it("the document gives query integers their ranges and defaults, and the signal name its pattern", async () => {
    const doc = await openapi();
    expect(param(doc, "/api/v1/runs", "get", "limit")?.schema).toEqual({
      type: "integer",
      minimum: 1,
      maximum: 100,
      default: 10,
    });
    expect(param(doc, "/api/v1/approvals", "get", "limit")?.schema).toEqual(
      param(doc, "/api/v1/runs", "get", "limit")?.schema,
    );
    expect(param(doc, "/api/v1/runs", "get", "offset")?.schema).toMatchObject({
      type: "integer",
      minimum: 0,
      maximum: 10000,
    });
    expect(param(doc, "/api/v1/runs/{run_id}/events", "get", "limit")?.schema).toMatchObject({
      maximum: 1000,
      default: 1000,
    });
    expect(param(doc, "/api/v1/runs/{run_id}/signals/{name}", "post", "name")?.schema).toMatchObject({
      pattern: "^[A-Za-z0-9_.-]{1,64}$",
      maxLength: 64,
    });
  });
});
