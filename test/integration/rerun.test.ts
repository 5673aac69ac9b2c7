import { afterEach, describe, expect, it } from "vitest";
import type { Problem } from "../../src/contracts/common";
import type { RunSummary } from "../../src/contracts/history";
import type { StepInput } from "../../src/contracts/plan";
import type { Run, RunEvent } from "../../src/contracts/run";
import { setFaultInjector } from "../../src/faults";
import { api, getEvents, getRun } from "../helpers/api";
import { todoCount } from "../helpers/faults";
import { eventually, purged, waitForEnd } from "../helpers/recovery";
import { apiKeyFor } from "../helpers/tenants";

afterEach(() => setFaultInjector(null));

const unique = (label: string) => `${label} ${crypto.randomUUID().slice(0, 8)}`;

async function create(json: unknown, key?: string): Promise<Run> {
  const res = await api("/api/v1/runs", { method: "POST", json, ...(key ? { key } : {}) });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as Run;
}

async function finished(json: unknown, key?: string): Promise<Run> {
  return waitForEnd((await create(json, key)).run_id, 15_000, key);
}

function rerun(runId: string, body?: unknown, init: { key?: string; headers?: HeadersInit } = {}): Promise<Response> {
  return api(`/api/v1/runs/${runId}/rerun`, {
    method: "POST",
    ...(body === undefined ? {} : { json: body }),
    ...init,
  });
}

async function rerunOk(runId: string, body?: unknown, key?: string): Promise<Run> {
  const res = await rerun(runId, body, key ? { key } : {});
  expect(res.status, await res.clone().text()).toBe(201);
  const run = (await res.json()) as Run;
  expect(res.headers.get("Location")).toBe(`/api/v1/runs/${run.run_id}`);
  return run;
}

async function list(query: string, key?: string): Promise<RunSummary[]> {
  const res = await api(`/api/v1/runs${query}`, key ? { key } : {});
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as RunSummary[];
}

/** Step numbers with a given event type. */
const stepsWith = (events: RunEvent[], type: string) =>
  events.filter((e) => e.type === type).map((e) => e.step_number as number);

const calc = (n: number, expression: string, depends_on?: number[]): StepInput => ({
  step_number: n,
  tool_name: "calculator",
  tool_input: { expression },
  ...(depends_on ? { depends_on } : {}),
});

/** 1 → 2 → 3, and 4 on its own (the highest step, so the run's result). */
const CHAIN = {
  prompt: "rerun chain",
  plan: {
    steps: [
      calc(1, "6 * 7"),
      calc(2, "{{steps.1.output}} + 1"),
      { step_number: 3, tool_name: "text", tool_input: { operation: "uppercase", text: "v{{steps.2.output}}" } },
      calc(4, "100"),
    ],
  },
};

describe("POST /api/v1/runs/{run_id}/rerun", () => {
  it("reruns from a step: the steps before it and beside it are reused with their outputs, it and its dependants run", async () => {
    const original = await finished(CHAIN);
    expect(original.status).toBe("completed");
    const created = await rerunOk(original.run_id, { from_step: 2 });
    expect(created.run_id).not.toBe(original.run_id);
    expect(created.rerun_of).toEqual({ run_id: original.run_id, from_step: 2 });
    expect(created.prompt).toBe(original.prompt);
    const run = await waitForEnd(created.run_id);
    expect(run.status).toBe("completed");
    expect(run.result).toBe(100);
    expect(run.execution_log.map((e) => [e.status, e.output])).toEqual([
      ["succeeded", 42],
      ["succeeded", 43],
      ["succeeded", "V43"],
      ["succeeded", 100],
    ]);
    const events = await getEvents(run.run_id);
    expect(stepsWith(events, "step.reused")).toEqual([1, 4]);
    for (const e of events.filter((x) => x.type === "step.reused")) {
      expect(e.data).toMatchObject({ from_run: original.run_id });
    }
    expect(events.find((e) => e.type === "step.reused" && e.step_number === 1)?.data?.output).toBe(42);
    // Reused steps ran nowhere: never dispatched, started or succeeded again.
    for (const type of ["step.dispatched", "step.started", "step.succeeded"]) {
      expect(stepsWith(events, type).sort()).toEqual([2, 3]);
    }
  });

  it("reruns with new tool_inputs: the overridden step and its dependants run, the rest is reused", async () => {
    const original = await finished(CHAIN);
    const first = await waitForEnd(
      (await rerunOk(original.run_id, { tool_inputs: { "1": { expression: "10 * 10" } } })).run_id,
    );
    expect(first.execution_log.map((e) => e.output)).toEqual([100, 101, "V101", 100]);
    expect(first.plan?.steps[0]?.tool_input).toEqual({ expression: "10 * 10" });
    expect(first.rerun_of).toEqual({ run_id: original.run_id, from_step: null });
    expect(stepsWith(await getEvents(first.run_id), "step.reused")).toEqual([4]);

    const second = await waitForEnd(
      (
        await rerunOk(original.run_id, {
          tool_inputs: { "3": { operation: "lowercase", text: "X{{steps.2.output}}" } },
        })
      ).run_id,
    );
    expect(second.execution_log.map((e) => e.output)).toEqual([42, 43, "x43", 100]);
    expect(stepsWith(await getEvents(second.run_id), "step.reused")).toEqual([1, 2, 4]);
  });

  it("without a body reruns only what did not succeed (and its dependants); a todo add that succeeded is reused, not repeated", async () => {
    const text = unique("rerun todo");
    // The original's sleep step fails (an upstream fault, one attempt allowed); the rerun's does not.
    let failing = true;
    setFaultInjector({
      onMessage: (m) => (failing && m.step_number === 2 && m.task === undefined ? { failTool: true } : undefined),
    });
    const original = await finished({
      prompt: "todo then flaky",
      options: { max_attempts: 1 },
      plan: {
        steps: [
          { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } },
          { step_number: 2, tool_name: "sleep", tool_input: { ms: 1 }, depends_on: [1] },
          {
            step_number: 3,
            tool_name: "text",
            tool_input: { operation: "uppercase", text: "{{steps.1.output.todo.text}}" },
            depends_on: [2],
          },
        ],
      },
    });
    failing = false;
    expect(original.status).toBe("failed");
    expect(original.execution_log.map((e) => e.status)).toEqual(["succeeded", "failed", "skipped"]);
    expect(await todoCount(text)).toBe(1);

    // No body at all (no Content-Type either).
    const res = await api(`/api/v1/runs/${original.run_id}/rerun`, { method: "POST" });
    expect(res.status, await res.clone().text()).toBe(201);
    const run = await waitForEnd(((await res.json()) as Run).run_id);
    expect(run.status).toBe("completed");
    expect(run.result).toBe(text.toUpperCase());
    expect(run.execution_log[0]?.output).toEqual(original.execution_log[0]?.output);
    expect(await todoCount(text)).toBe(1);
    const events = await getEvents(run.run_id);
    expect(events.find((e) => e.type === "step.reused")).toMatchObject({
      step_number: 1,
      data: { from_run: original.run_id, output: original.execution_log[0]?.output },
    });
    expect(stepsWith(events, "step.dispatched")).not.toContain(1);
    expect(stepsWith(events, "step.succeeded").sort()).toEqual([2, 3]);
  });

  it("fixes a failed step's input and reruns it, reusing the todo the original added", async () => {
    const text = unique("fix input");
    const original = await finished({
      prompt: "todo then divide",
      plan: {
        steps: [
          { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } },
          calc(2, "1 / 0", [1]),
        ],
      },
    });
    expect(original.status).toBe("failed");
    const run = await waitForEnd(
      (await rerunOk(original.run_id, { tool_inputs: { "2": { expression: "1 / 1" } } })).run_id,
    );
    expect(run).toMatchObject({ status: "completed", result: 1 });
    expect(await todoCount(text)).toBe(1);
    expect(stepsWith(await getEvents(run.run_id), "step.reused")).toEqual([1]);
  });

  it("reuses every step of a completed run rerun without a body, running nothing", async () => {
    const original = await finished(CHAIN);
    const run = await waitForEnd((await rerunOk(original.run_id, {})).run_id);
    expect(run).toMatchObject({ status: "completed", result: original.result });
    const events = await getEvents(run.run_id);
    expect(stepsWith(events, "step.reused")).toEqual([1, 2, 3, 4]);
    expect(stepsWith(events, "step.dispatched")).toEqual([]);
  });

  it("leaves the original unchanged", async () => {
    const original = await finished(CHAIN);
    const before = { run: await getRun(original.run_id), events: await getEvents(original.run_id) };
    await waitForEnd((await rerunOk(original.run_id, { from_step: 1 })).run_id);
    await waitForEnd((await rerunOk(original.run_id, { tool_inputs: { "4": { expression: "7" } } })).run_id);
    expect(await getRun(original.run_id)).toEqual(before.run);
    expect(await getEvents(original.run_id)).toEqual(before.events);
    expect(before.run.rerun_of).toBeNull();
  });

  it("takes the original's options with the body's options applied on top", async () => {
    const original = await finished({
      ...CHAIN,
      options: { max_parallel: 3, step_timeout_ms: 4000, on_failure: "continue", max_attempts: 2 },
    });
    const same = await rerunOk(original.run_id, { from_step: 1 });
    expect(same.options).toEqual(original.options);
    const changed = await rerunOk(original.run_id, {
      from_step: 1,
      options: { max_parallel: 2, on_failure: "compensate" },
    });
    expect(changed.options).toEqual({ ...original.options, max_parallel: 2, on_failure: "compensate" });
    await waitForEnd(same.run_id);
    await waitForEnd(changed.run_id);
  });

  it("does not undo a reused step when the rerun compensates: its effect belongs to the original", async () => {
    const text = unique("reused saga");
    const original = await finished({
      prompt: "todo then fail",
      plan: {
        steps: [
          { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } },
          calc(2, "1 / 0", [1]),
        ],
      },
    });
    expect(original.status).toBe("failed");
    const run = await waitForEnd((await rerunOk(original.run_id, { options: { on_failure: "compensate" } })).run_id);
    expect(run.status).toBe("failed");
    expect(run.compensation).toMatchObject({ status: "completed", steps: [{ step_number: 1, status: "skipped" }] });
    expect(await todoCount(text)).toBe(1);
  });

  it("answers 422 for a from_step or tool_inputs key that is not a step, an invalid override, or a bad body; and creates nothing", async () => {
    const key = await apiKeyFor(`t-rerun-422-${crypto.randomUUID().slice(0, 6)}`);
    const original = await finished(CHAIN, key);
    const cases: [unknown, RegExp][] = [
      [{ from_step: 9 }, /from_step/],
      [{ tool_inputs: { "9": { expression: "1" } } }, /tool_inputs/],
      [{ tool_inputs: { "1": { expression: 5 } } }, /tool_inputs/],
      [{ tool_inputs: { "1": { expression: "1", extra: true } } }, /tool_inputs/],
      [{ tool_inputs: { "2": { expression: "{{steps.7.output}}" } } }, /tool_inputs/],
      [{ tool_inputs: { one: { expression: "1" } } }, /tool_inputs/],
      [{ from_step: 0 }, /from_step/],
      [{ from_step: "2" }, /from_step/],
      [{ options: { on_failure: "explode" } }, /on_failure/],
      [{ unknown: true }, /unknown|unrecognized/i],
    ];
    for (const [body, path] of cases) {
      const res = await rerun(original.run_id, body, { key });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.headers.get("Content-Type")).toMatch(/application\/problem\+json/);
      const problem = (await res.json()) as Problem;
      expect(problem.errors?.length, JSON.stringify(body)).toBeGreaterThan(0);
      expect(problem.errors?.map((e) => `${e.path} ${e.message}`).join("; "), JSON.stringify(body)).toMatch(path);
    }
    expect(await list(`?rerun_of=${original.run_id}`, key)).toEqual([]);
  });

  it("reruns a run whose `wait until` has passed, reusing the wait instead of refusing its time as past", async () => {
    const until = new Date(Date.now() + 1500).toISOString();
    const original = await finished({
      prompt: "wait then fail",
      plan: {
        steps: [{ step_number: 1, tool_name: "wait", tool_input: { until } }, calc(2, "1 / 0", [1])],
      },
    });
    expect(original.execution_log.map((e) => e.status)).toEqual(["succeeded", "failed"]);
    // The wait succeeded and is neither from_step nor overridden: it is reused, never waited again.
    const res = await rerun(original.run_id, { tool_inputs: { "2": { expression: "1 + 1" } } });
    expect(res.status, await res.clone().text()).toBe(201);
    const run = await waitForEnd(((await res.json()) as Run).run_id);
    expect(run).toMatchObject({ status: "completed", result: 2 });
    expect(stepsWith(await getEvents(run.run_id), "step.reused")).toEqual([1]);
  });

  it("checks an overridden wait's time as a new one: in the future and at most 365 days ahead (422)", async () => {
    const original = await finished({
      prompt: "wait then fail",
      plan: {
        steps: [{ step_number: 1, tool_name: "wait", tool_input: { ms: 1 } }, calc(2, "1 / 0", [1])],
      },
    });
    for (const until of ["2099-01-01T00:00:00Z", "2020-01-01T00:00:00Z"]) {
      const res = await rerun(original.run_id, { from_step: 1, tool_inputs: { "1": { until } } });
      expect(res.status, until).toBe(422);
      expect(((await res.json()) as Problem).errors?.map((e) => e.path)).toEqual(["tool_inputs.1.until"]);
    }
    const soon = new Date(Date.now() + 60_000).toISOString();
    const ok = await rerun(original.run_id, { from_step: 1, tool_inputs: { "1": { until: soon } } });
    expect(ok.status, await ok.clone().text()).toBe(201);
  });

  it("names an invalid override by the field the client sent: tool_inputs.<step>.<field>", async () => {
    const original = await finished(CHAIN);
    const res = await rerun(original.run_id, { tool_inputs: { "1": { expression: 5 } } });
    expect(res.status).toBe(422);
    const problem = (await res.json()) as Problem;
    expect(problem.errors?.map((e) => e.path)).toEqual(["tool_inputs.1.expression"]);
    expect(problem.detail).toContain("tool_inputs.1.expression");
  });

  it("answers 409 for a run that has not finished, and reruns it once it has", async () => {
    const key = await apiKeyFor(`t-rerun-409-${crypto.randomUUID().slice(0, 6)}`);
    const waiting = await create(
      { prompt: "waits", plan: { steps: [{ step_number: 1, tool_name: "approval", tool_input: { message: "ok?" } }] } },
      key,
    );
    const res = await rerun(waiting.run_id, {}, { key });
    expect(res.status).toBe(409);
    expect(((await res.json()) as Problem).detail).toMatch(/not finished/);
    expect(await list(`?rerun_of=${waiting.run_id}`, key)).toEqual([]);
    expect((await api(`/api/v1/runs/${waiting.run_id}/cancel`, { method: "POST", key })).status).toBe(200);
    const again = await rerunOk(waiting.run_id, {}, key);
    expect(again.rerun_of).toEqual({ run_id: waiting.run_id, from_step: null });
    expect((await api(`/api/v1/runs/${again.run_id}/cancel`, { method: "POST", key })).status).toBe(200);
  });

  it("answers 409 for a run that failed while planning (it has no plan)", async () => {
    const original = await finished({ prompt: "xyzzy plugh frobnicate", planner: "rules" });
    expect(original).toMatchObject({ status: "failed", plan: null });
    const res = await rerun(original.run_id, {});
    expect(res.status).toBe(409);
  });

  it("answers 404 for an unknown run and for another tenant's run", async () => {
    const original = await finished(CHAIN);
    const missing = await rerun("01234567-89ab-7def-8123-456789abcdef", {});
    expect(missing.status).toBe(404);
    expect((await rerun("not-a-run", {})).status).toBe(404);
    const other = await apiKeyFor(`t-rerun-other-${crypto.randomUUID().slice(0, 6)}`);
    const foreign = await rerun(original.run_id, {}, { key: other });
    expect(foreign.status).toBe(404);
    expect(((await foreign.json()) as Problem).detail).toBe(
      ((await missing.json()) as Problem).detail.replace("01234567-89ab-7def-8123-456789abcdef", original.run_id),
    );
    expect(await list(`?rerun_of=${original.run_id}`, other)).toEqual([]);
  });

  it("carries rerun_of in GET /runs, and ?rerun_of= lists exactly the reruns of a run, newest first", async () => {
    const key = await apiKeyFor(`t-rerun-list-${crypto.randomUUID().slice(0, 6)}`);
    const original = await finished(CHAIN, key);
    const other = await finished(CHAIN, key);
    const a = await rerunOk(original.run_id, { from_step: 3 }, key);
    const b = await rerunOk(original.run_id, {}, key);
    const c = await rerunOk(other.run_id, {}, key);
    // Listed at once (read your writes), and again once finished and archived.
    for (const phase of ["live", "finished"]) {
      if (phase === "finished") for (const r of [a, b, c]) await waitForEnd(r.run_id, 15_000, key);
      const reruns = await list(`?rerun_of=${original.run_id}`, key);
      expect(
        reruns.map((r) => r.run_id),
        phase,
      ).toEqual([b.run_id, a.run_id]);
      expect(reruns.map((r) => r.rerun_of)).toEqual([
        { run_id: original.run_id, from_step: null },
        { run_id: original.run_id, from_step: 3 },
      ]);
      const all = await list("?limit=100", key);
      expect(all.find((r) => r.run_id === c.run_id)?.rerun_of).toEqual({ run_id: other.run_id, from_step: null });
      expect(all.find((r) => r.run_id === original.run_id)?.rerun_of).toBeNull();
    }
    expect(await list(`?rerun_of=${a.run_id}`, key)).toEqual([]);
    // The same from D1 once the reruns left their Durable Objects.
    await purged(a.run_id, tenantOf(key));
    const fromD1 = await list(`?rerun_of=${original.run_id}`, key);
    expect(fromD1.map((r) => r.run_id)).toEqual([b.run_id, a.run_id]);
    expect((await getRun(a.run_id, key)).rerun_of).toEqual({ run_id: original.run_id, from_step: 3 });
  });

  it("answers 400 for a malformed ?rerun_of=", async () => {
    const res = await api(`/api/v1/runs?rerun_of=${"x".repeat(65)}`);
    expect(res.status).toBe(400);
  });

  it("honours Idempotency-Key: the same key and body return the same rerun, another body is a 422", async () => {
    const key = await apiKeyFor(`t-rerun-idem-${crypto.randomUUID().slice(0, 6)}`);
    const original = await finished(CHAIN, key);
    const headers = { "Idempotency-Key": `rerun-${crypto.randomUUID()}` };
    const first = await rerun(original.run_id, { from_step: 2 }, { key, headers });
    expect(first.status).toBe(201);
    const run = (await first.json()) as Run;
    const replay = await rerun(original.run_id, { from_step: 2 }, { key, headers });
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await replay.json()) as Run).run_id).toBe(run.run_id);
    const conflict = await rerun(original.run_id, { from_step: 3 }, { key, headers });
    expect(conflict.status).toBe(422);
    await waitForEnd(run.run_id, 15_000, key);
    expect((await list(`?rerun_of=${original.run_id}`, key)).map((r) => r.run_id)).toEqual([run.run_id]);
  });

  it("reruns a run that is served from the D1 archive, reusing its archived outputs and options", async () => {
    const text = unique("archived rerun");
    const original = await finished({
      prompt: "archived original",
      options: { max_parallel: 4, on_failure: "continue" },
      plan: {
        steps: [
          { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } },
          calc(2, "2 * 21"),
          {
            step_number: 3,
            tool_name: "text",
            tool_input: { operation: "uppercase", text: "{{steps.1.output.todo.text}} {{steps.2.output}}" },
          },
        ],
      },
    });
    expect(original.status).toBe("completed");
    await purged(original.run_id);
    const created = await rerunOk(original.run_id, { from_step: 3 });
    expect(created.options).toEqual(original.options);
    const run = await waitForEnd(created.run_id);
    expect(run).toMatchObject({ status: "completed", result: `${text.toUpperCase()} 42` });
    expect(stepsWith(await getEvents(run.run_id), "step.reused")).toEqual([1, 2]);
    expect(await todoCount(text)).toBe(1);
    // The original, from D1, is unchanged.
    expect(await getRun(original.run_id)).toEqual(original);
  });
});

/** The tenant an `apiKeyFor` key belongs to (`test-<tenant>-<uuid>`). */
function tenantOf(key: string): string {
  return key.slice("test-".length, key.length - 37);
}

describe("rerun and eventual listing", () => {
  it("lists a finished rerun with its final status within a moment", async () => {
    const key = await apiKeyFor(`t-rerun-final-${crypto.randomUUID().slice(0, 6)}`);
    const original = await finished(CHAIN, key);
    const run = await waitForEnd((await rerunOk(original.run_id, { from_step: 1 }, key)).run_id, 15_000, key);
    await eventually(
      "the rerun's final status in the list",
      () => list(`?rerun_of=${original.run_id}`, key),
      (rows) => rows[0]?.status === run.status && rows[0]?.result === run.result,
      5_000,
    );
  });
});

describe("rerun of a compensated run", () => {
  it("runs again the steps whose effects the original's compensation undid, instead of reusing them", async () => {
    const text = unique("undone then redone");
    const original = await finished({
      prompt: "saga to rerun",
      options: { on_failure: "compensate" },
      plan: {
        steps: [{ step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } }, calc(2, "1/0", [1])],
      },
    });
    expect(original.compensation?.status).toBe("completed");
    expect(await todoCount(text)).toBe(0);
    const again = await waitForEnd(
      (await rerunOk(original.run_id, { tool_inputs: { "2": { expression: "1/1" } } })).run_id,
    );
    expect(again.status).toBe("completed");
    // The add was undone in the original, so it ran again rather than reusing a deleted todo's id.
    expect(stepsWith(await getEvents(again.run_id), "step.reused")).toEqual([]);
    expect(await todoCount(text)).toBe(1);
  });
});
