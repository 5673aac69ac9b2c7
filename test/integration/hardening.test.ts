import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { RunSummary } from "../../src/contracts/history";
import type { Run } from "../../src/contracts/run";
import { api, createRun, getRun, waitForRun } from "../helpers/api";
import { todoCount } from "../helpers/faults";
import { coordinator, eventually } from "../helpers/recovery";
import { apiKeyFor } from "../helpers/tenants";

const UUID = "01a21900-0000-7000-8000-000000000000";

/** Every route that needs a key, spelt plainly, with a method and (for POST) a JSON body. */
const KEYED_ROUTES: [string, string][] = [
  ["GET", "/api/v1/tools"],
  ["GET", "/api/v1/metrics"],
  ["GET", "/api/v1/runs"],
  ["POST", "/api/v1/runs"],
  ["GET", "/api/v1/approvals"],
  ["GET", `/api/v1/runs/${UUID}`],
  ["GET", `/api/v1/runs/${UUID}/events`],
  ["POST", `/api/v1/runs/${UUID}/cancel`],
  ["POST", `/api/v1/runs/${UUID}/rerun`],
  ["POST", `/api/v1/runs/${UUID}/steps/1/approve`],
  ["POST", `/api/v1/runs/${UUID}/steps/1/reject`],
  ["POST", `/api/v1/runs/${UUID}/signals/go`],
];

/** Percent-encodes the letters of `path` chosen by `pick` (after /api/v1/), as an attacker would. */
function encodeLetters(path: string, pick: (i: number) => boolean): string {
  const prefix = "/api/v1/";
  const rest = path.slice(prefix.length);
  return (
    prefix +
    [...rest]
      .map((ch, i) => (/[a-z]/.test(ch) && pick(i) ? `%${ch.charCodeAt(0).toString(16).toUpperCase()}` : ch))
      .join("")
  );
}

async function keyless(method: string, path: string) {
  const res = await api(path, { method, key: null, ...(method === "POST" ? { json: { prompt: "x" } } : {}) });
  return { status: res.status, type: res.headers.get("Content-Type") ?? "", body: await res.text() };
}

describe("security: a key is required whatever the spelling of the path", () => {
  it.each([
    ["GET", "/api/v1/%74ools"],
    ["GET", `/api/v1/%72uns/${UUID}`],
    ["GET", "/api/v1/%6Detrics"],
    ["POST", "/api/v1/run%73"],
    ["GET", "/api/v1/%61pprovals"],
    ["GET", `/api/v1/runs/${UUID}/%65vents`],
    ["POST", `/api/v1/runs/${UUID}/steps/1/%61pprove`],
    ["GET", "/api/v1/./tools"],
    ["GET", "/api/v1/runs/../tools"],
    ["GET", "/api/v1/%2e/tools"],
  ])("%s %s without a key is 401 (never data, never 500)", async (method, path) => {
    const res = await keyless(method, path);
    expect(res.status, res.body).toBe(401);
    expect(res.type).toBe("application/problem+json");
  });

  it.each([
    ["GET", "/API/V1/TOOLS"],
    ["GET", "/api/v1//tools"],
    ["GET", "/api/v1/tools/"],
    ["GET", "/api/V1/tools"],
  ])("%s %s (another path) is 404, never data", async (method, path) => {
    const res = await keyless(method, path);
    expect(res.status, res.body).toBe(404);
    expect(res.body).not.toContain("input_schema");
  });

  it.each([
    ["GET", "/api/v1/runs/"],
    ["POST", "/api/v1/runs/"],
    ["GET", "/api/v1/runs//events"],
    ["POST", "/api/v1/runs//cancel"],
    ["POST", `/api/v1/runs/${UUID}/steps//approve`],
    ["POST", `/api/v1/runs/${UUID}/signals/`],
    ["DELETE", "/api/v1/admin/api-keys/"],
  ])(
    "%s %s (an empty segment where a parameter goes) is a 404 problem, with or without a key",
    async (method, path) => {
      for (const key of [undefined, null]) {
        const res = await api(path, { method, ...(key === null ? { key } : {}) });
        expect(res.status, `${key === null ? "keyless" : "keyed"} ${method} ${path}`).toBe(404);
        expect(res.headers.get("Content-Type")).toBe("application/problem+json");
        expect(res.headers.get("Allow")).toBeNull();
        expect(((await res.json()) as { detail: string }).detail).toBe(`No route for ${method} ${path}`);
      }
    },
  );

  it.each([
    ["DELETE", "/api/v1/%72uns", "/api/v1/runs", "GET, HEAD, POST"],
    ["PUT", `/api/v1/%72uns/${UUID}`, `/api/v1/runs/${UUID}`, "GET, HEAD"],
    ["GET", `/api/v1/runs/${UUID}/%63ancel`, `/api/v1/runs/${UUID}/cancel`, "POST"],
    ["PATCH", "/api/v1/%74ools", "/api/v1/tools", "GET, HEAD"],
  ])(
    "%s %s is a 405 as on the plain path (one decoding for routing and for Allow)",
    async (method, encoded, plain, allow) => {
      for (const path of [encoded, plain]) {
        const res = await api(path, { method });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers.get("Allow"), path).toBe(allow);
        expect(res.headers.get("Content-Type")).toBe("application/problem+json");
      }
    },
  );

  it("an encoded path with a key reaches the same route as the plain one", async () => {
    const res = await api("/api/v1/%74ools");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { name: string }[]).map((t) => t.name)).toContain("calculator");
  });

  it("property: any percent-encoding of any keyed route's letters, without a key, is 401 or 404 — never 2xx, never 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...KEYED_ROUTES),
        fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
        async ([method, path], bits) => {
          const res = await keyless(
            method,
            encodeLetters(path, (i) => bits[i % bits.length] === true),
          );
          expect([401, 404], `${method} ${path}: ${res.body}`).toContain(res.status);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("reserves tenant names that a lost value would stringify to", async () => {
    for (const tenant of ["undefined", "null", "NULL", "NaN", "admin"]) {
      const res = await api("/api/v1/admin/api-keys", {
        method: "POST",
        key: "crane-dev-admin",
        json: { tenant, name: "x" },
      });
      expect(res.status, tenant).toBe(422);
      expect(((await res.json()) as { detail: string }).detail).toContain("tenant name is reserved");
    }
  });
});

describe("security: looking up a run id that has no run stores nothing", () => {
  it("GET, events, live, cancel, approve and signal of an unknown id answer 404 and leave its object empty", async () => {
    const id = crypto.randomUUID();
    expect((await api(`/api/v1/runs/${id}`)).status).toBe(404);
    expect((await api(`/api/v1/runs/${id}/events`)).status).toBe(404);
    expect((await api(`/api/v1/runs/${id}/live`, { headers: { Upgrade: "websocket" } })).status).toBe(404);
    expect((await api(`/api/v1/runs/${id}/cancel`, { method: "POST" })).status).toBe(404);
    expect((await api(`/api/v1/runs/${id}/steps/1/approve`, { method: "POST" })).status).toBe(404);
    expect((await api(`/api/v1/runs/${id}/signals/go`, { method: "POST" })).status).toBe(404);
    const stored = await runInDurableObject(coordinator("dev", id), async (_, state) => ({
      tables: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master").one().n,
      alarm: await state.storage.getAlarm(),
    }));
    expect(stored).toEqual({ tables: 0, alarm: null });
  });

  it("an id that is not a run id is 404 without reaching any object", async () => {
    for (const id of ["nope", "x".repeat(64), "01A21900-0000-7000-8000-000000000000"]) {
      expect((await api(`/api/v1/runs/${id}`)).status, id).toBe(404);
    }
  });

  it("a run id of any length is a 404 whose detail is one sentence, on every route that takes one", async () => {
    for (const id of ["x".repeat(65), "y".repeat(5000)]) {
      const shown = `Run '${id.slice(0, 64)}…' not found`;
      for (const [method, path] of [
        ["GET", `/api/v1/runs/${id}`],
        ["GET", `/api/v1/runs/${id}/events`],
        ["POST", `/api/v1/runs/${id}/cancel`],
        ["POST", `/api/v1/runs/${id}/rerun`],
        ["POST", `/api/v1/runs/${id}/steps/1/approve`],
        ["POST", `/api/v1/runs/${id}/signals/go`],
      ] as const) {
        const res = await api(path, { method });
        expect(res.status, `${method} ${path.slice(0, 40)}`).toBe(404);
        expect(((await res.json()) as { detail: string }).detail).toBe(shown);
      }
    }
    const key = await api(`/api/v1/admin/api-keys/${"k".repeat(65)}`, { method: "DELETE", key: "crane-dev-admin" });
    expect(key.status).toBe(404);
    expect(((await key.json()) as { detail: string }).detail).toBe(
      `API key '${"k".repeat(64)}…' not found or already revoked`,
    );
  });
});

describe("security: reference fan-in", () => {
  const bigList = async (tenant: string) => {
    // 48 todos of 1000 characters: a `list` step outputs ~50 KB.
    const text = "x".repeat(990);
    for (let i = 0; i < 48; i++) {
      await env.DB.prepare("INSERT INTO todos (id, tenant, text, completed, created_at) VALUES (?, ?, ?, 0, ?)")
        .bind(crypto.randomUUID(), tenant, `${i} ${text}`, new Date().toISOString())
        .run();
    }
  };

  it("refuses a step with more references than allowed (422), before anything runs", async () => {
    const res = await api("/api/v1/runs", {
      method: "POST",
      json: {
        prompt: "fan-in",
        plan: {
          steps: [
            { step_number: 1, tool_name: "calculator", tool_input: { expression: "1" } },
            {
              step_number: 2,
              tool_name: "text",
              tool_input: { operation: "char_count", text: "{{steps.1.output}}".repeat(500) },
            },
          ],
        },
      },
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { detail: string }).detail).toContain("holds 500 references; at most 64");
  });

  it.each(["text", "todo_store"])(
    "a step whose resolved input would be megabytes fails, not retried, and the run stays small (%s)",
    async (tool) => {
      const tenant = `t-fanin-${tool}`;
      const key = await apiKeyFor(tenant);
      await bigList(tenant);
      // 50 references (900 characters, within the text limits) to a ~50 KB output: ~2.5 MB resolved.
      const refs = "{{steps.1.output}}".repeat(50);
      const input = tool === "text" ? { operation: "char_count", text: refs } : { action: "add", text: refs };
      const res = await api("/api/v1/runs", {
        method: "POST",
        key,
        json: {
          prompt: "fan-in",
          plan: {
            steps: [
              { step_number: 1, tool_name: "todo_store", tool_input: { action: "list" } },
              { step_number: 2, tool_name: tool, tool_input: input },
            ],
          },
        },
      });
      expect(res.status).toBe(201);
      const run = await waitForRun(((await res.json()) as Run).run_id, 15_000, 20, key);
      expect(run.status).toBe("failed");
      expect(run.execution_log[1]).toMatchObject({ status: "failed", attempts: 1 });
      expect(run.execution_log[1]?.error).toBe("Input with its references resolved exceeds 65536 bytes");
      const body = await (await api(`/api/v1/runs/${run.run_id}`, { key })).text();
      expect(body.length).toBeLessThan(200_000);
      // The tenant's active-run slot was given back: a new run starts.
      expect((await api("/api/v1/runs", { method: "POST", key, json: { prompt: "calculate 1+1" } })).status).toBe(201);
    },
  );
});

describe("bad input is never a 500", () => {
  it.each([5_000, 10_000])("a tool_input nested %i arrays deep is a 422 naming the depth", async (depth) => {
    const res = await api("/api/v1/runs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: `{"prompt":"deep","plan":{"steps":[{"step_number":1,"tool_name":"calculator","tool_input":{"expression":${"[".repeat(depth)}${"]".repeat(depth)}}}]}}`,
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { detail: string }).detail).toBe(
      "Request body nests arrays or objects deeper than 32 levels",
    );
  });

  it("brackets inside strings do not count as nesting", async () => {
    const res = await api("/api/v1/runs", {
      method: "POST",
      json: {
        prompt: `[[[[${"[".repeat(100)}`,
        plan: {
          steps: [{ step_number: 1, tool_name: "text", tool_input: { operation: "trim", text: "{".repeat(200) } }],
        },
      },
    });
    expect(res.status).toBe(201);
  });

  it("property: deep JSON, huge strings and odd Unicode in any body never make a 5xx", async () => {
    const odd = fc.string({ unit: "binary", maxLength: 200 });
    const deep = fc.integer({ min: 30, max: 3000 }).map((d) => `${"[".repeat(d)}${"]".repeat(d)}`);
    const body = fc.oneof(
      deep,
      odd.map((s) => JSON.stringify({ prompt: s })),
      fc.integer({ min: 1, max: 300_000 }).map((n) => JSON.stringify({ prompt: "x".repeat(n) })),
      deep.map((d) => `{"prompt":"x","options":${d}}`),
      odd,
    );
    const path = fc.constantFrom("/api/v1/runs", `/api/v1/runs/${UUID}/cancel`, `/api/v1/runs/${UUID}/signals/a`);
    await fc.assert(
      fc.asyncProperty(path, body, async (p, b) => {
        const res = await api(p, { method: "POST", headers: { "Content-Type": "application/json" }, body: b });
        expect(res.status, `${p} ${b.slice(0, 80)}`).toBeLessThan(500);
      }),
      { numRuns: 120 },
    );
  });
});

describe("correctness: lists read their own writes", () => {
  it("a run is listed as soon as its POST answered, and shows its final status once it finished", async () => {
    const key = await apiKeyFor("t-ryw");
    const res = await api("/api/v1/runs", {
      method: "POST",
      key,
      json: {
        prompt: "listed at once",
        plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 300 } }] },
      },
    });
    const { run_id } = (await res.json()) as Run;
    const first = (await (await api("/api/v1/runs", { key })).json()) as RunSummary[];
    expect(first[0]).toMatchObject({ run_id, status: "running", planner: "explicit", step_count: 1 });

    const done = await waitForRun(run_id, 10_000, 20, key);
    // Final within 1 s of finishing (API.md): poll the list against that bound.
    const deadline = Date.parse(done.completed_at ?? "") + 1000;
    let listed: RunSummary | undefined;
    do {
      listed = ((await (await api("/api/v1/runs", { key })).json()) as RunSummary[]).find((r) => r.run_id === run_id);
    } while (listed?.status !== "completed" && Date.now() < deadline);
    expect(listed).toMatchObject({ status: "completed", result: { slept_ms: 300 } });
  });

  it("a run that finished inside its POST is listed finished at once", async () => {
    const key = await apiKeyFor("t-ryw-inline");
    const created = await api("/api/v1/runs", { method: "POST", key, json: { prompt: "calculate 6 * 7" } });
    const { run_id } = (await created.json()) as Run;
    const [top] = (await (await api("/api/v1/runs", { key })).json()) as RunSummary[];
    expect(top).toMatchObject({ run_id, status: "completed", result: 42 });
  });
});

describe("correctness: Idempotency-Key after retention", () => {
  it("a replay after the run's storage was purged returns the archived run and runs nothing again", async () => {
    const text = `idempotent ${crypto.randomUUID()}`;
    const body = {
      prompt: "once",
      plan: { steps: [{ step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } }] },
    };
    const headers = { "Idempotency-Key": `key-${crypto.randomUUID()}` };
    const first = await api("/api/v1/runs", { method: "POST", json: body, headers });
    const { run_id } = (await first.json()) as Run;
    await waitForRun(run_id);
    // RUN_RETENTION_MS is 3 s in the tests: wait until the coordinator deleted its storage.
    await eventually(
      "the run's storage to be deleted",
      () =>
        runInDurableObject(
          coordinator("dev", run_id),
          (_, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master").one().n,
        ),
      (tables) => tables === 0,
      20_000,
    );
    const replay = await api("/api/v1/runs", { method: "POST", json: body, headers });
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await replay.json()) as Run).run_id).toBe(run_id);
    expect(await todoCount(text)).toBe(1);
    const again = await getRun(run_id);
    expect(again.status).toBe("completed");
  });
});

describe("correctness: an Idempotency-Key retry is the same body whatever its key order", () => {
  const reversed = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).reverse());

  it("POST /runs replays a body whose tool_input has its keys in another order; another value is a 422", async () => {
    const text = `key order ${crypto.randomUUID()}`;
    const input = { action: "add", text };
    const body = (tool_input: unknown) => ({
      prompt: "once",
      plan: { steps: [{ step_number: 1, tool_name: "todo_store", tool_input }] },
    });
    const headers = { "Idempotency-Key": `order-${crypto.randomUUID()}` };
    const first = await api("/api/v1/runs", { method: "POST", json: body(input), headers });
    expect(first.status).toBe(201);
    const replay = await api("/api/v1/runs", { method: "POST", json: body(reversed(input)), headers });
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    const runId = ((await first.json()) as Run).run_id;
    expect(((await replay.json()) as Run).run_id).toBe(runId);
    const other = await api("/api/v1/runs", { method: "POST", json: body({ ...input, text: `${text}!` }), headers });
    expect(other.status).toBe(422);
    await waitForRun(runId);
    expect(await todoCount(text)).toBe(1);
  });

  it("a signal replays with its data's keys in another order", async () => {
    const run = await createRun({
      prompt: "wait for a signal",
      plan: { steps: [{ step_number: 1, tool_name: "signal", tool_input: { name: "paid", timeout_ms: 60_000 } }] },
    });
    const headers = { "Idempotency-Key": `signal-order-${crypto.randomUUID()}` };
    const data = { amount: 10, currency: "EUR", meta: { a: 1, b: [{ x: 1, y: 2 }] } };
    const send = (d: unknown) =>
      api(`/api/v1/runs/${run.run_id}/signals/paid`, { method: "POST", json: { data: d }, headers });
    expect((await send(data)).status).toBe(202);
    const replay = await send({ meta: { b: [{ y: 2, x: 1 }], a: 1 }, currency: "EUR", amount: 10 });
    expect(replay.status).toBe(202);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect((await send({ ...data, amount: 11 })).status).toBe(422);
  });
});

describe("tests cover what runs in production", () => {
  it("a pure calculation completes within its POST (placement default: the coordinator runs it)", async () => {
    const run = await createRun({ prompt: "calculate (41*7)+13" });
    expect(run).toMatchObject({ status: "completed", result: 300 });
    expect(run.execution_log[0]).toMatchObject({ status: "succeeded", attempts: 1 });
  });
});

describe("the Worker answers every path: the console's, /docs and any spelling of the API's", () => {
  it("serves console pages and /docs from the assets, each with an X-Request-Id", async () => {
    for (const path of ["/", "/runs/0192aaaa-0000-7000-8000-000000000001", "/approvals", "/docs"]) {
      const res = await api(path, { key: null, headers: { "X-Request-Id": `page-${path}` } });
      expect(res.status, path).toBe(200);
      expect(res.headers.get("Content-Type"), path).toMatch(/^text\/html/);
      expect(res.headers.get("X-Request-Id"), path).toBe(`page-${path}`);
      expect(res.headers.get("Content-Security-Policy"), path).toContain("default-src 'self'");
    }
    const docs = await api("/docs", { key: null });
    expect(await docs.text()).toContain("scalar");
  });

  it("answers a spelling of an API path that names no route with the API's 404, not the console's HTML", async () => {
    for (const path of ["/API/v1/runs", "/Api/v1/tools", "//api/v1/runs", "/openapi.json/", "/api"]) {
      const res = await api(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("Content-Type"), path).toBe("application/problem+json");
      expect(res.headers.get("X-Request-Id"), path).toBeTruthy();
    }
  });
});
