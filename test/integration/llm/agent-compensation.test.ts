import { afterEach, describe, expect, it, vi } from "vitest";
import type { CompensationStep } from "../../../src/contracts/recovery";
import type { Run, RunEvent } from "../../../src/contracts/run";
import { setFaultInjector } from "../../../src/faults";
import { api, getRun, waitForRun } from "../../helpers/api";
import { todoCount } from "../../helpers/faults";
import { scriptedProvider } from "../../helpers/llm";
import { eventually } from "../../helpers/recovery";
import { apiKeyFor } from "../../helpers/tenants";

// A saga undoes what an agent step did through its tool calls: each succeeded call whose tool
// declares a compensation (a `todo_store` add → delete that todo) is a compensation of its own,
// newest first, durable like any other (docs/api.md, "Compensation"). The provider is faked at
// its HTTP boundary (test/helpers/llm.ts); the loop, the consumers and D1 run as in production.

afterEach(() => {
  vi.restoreAllMocks();
  setFaultInjector(null);
});

const FAST = { step_timeout_ms: 1000 };
const unique = (label: string) => `${label} ${crypto.randomUUID()}`;
const add = (text: string) => ({ name: "todo_store", arguments: { action: "add", text } });

async function create(key: string, steps: unknown[], options: Record<string, unknown> = {}): Promise<Run> {
  const res = await api("/api/v1/runs", {
    method: "POST",
    key,
    json: { prompt: "agent saga", plan: { steps }, options: { ...FAST, on_failure: "compensate", ...options } },
  });
  expect(res.status).toBe(201);
  return waitForRun(((await res.json()) as Run).run_id, 20_000, 25, key);
}

const agentStep = (extra: Record<string, unknown> = {}) => ({
  step_number: 1,
  tool_name: "agent",
  tool_input: { goal: "add the todos", ...extra },
});
/** A step after the agent that fails for good (division by zero is not retried). */
const failing = { step_number: 2, tool_name: "calculator", tool_input: { expression: "1/0" }, depends_on: [1] };
const events = async (runId: string, key: string) =>
  (await (await api(`/api/v1/runs/${runId}/events`, { key })).json()) as RunEvent[];
const entries = (run: Run) => (run.compensation?.steps ?? []) as CompensationStep[];

describe("compensation of an agent step's tool calls", () => {
  it("undoes each succeeded call newest first when a later step fails; a call with no compensation is skipped", async () => {
    const key = await apiKeyFor("t-agent-saga");
    const [a, b] = [unique("agent saga a"), unique("agent saga b")];
    scriptedProvider(
      { tool_calls: [add(a)] },
      { tool_calls: [{ name: "calculator", arguments: { expression: "6 * 7" } }, add(b)] },
      { answer: "added both" },
    );
    const run = await create(key, [agentStep(), failing]);
    expect(run.status).toBe("failed");
    expect(run.execution_log[0]?.status).toBe("succeeded");
    expect(await todoCount(a)).toBe(0);
    expect(await todoCount(b)).toBe(0);
    expect(run.compensation?.status).toBe("completed");
    // Newest success first, in the order the calls succeeded (calls 2 and 3 of one turn may run
    // in parallel): the todo adds are undone, the calculator's call has nothing to undo.
    const log = await events(run.run_id, key);
    const succeeded = log.filter((e) => e.type === "agent.call_succeeded").map((e) => e.data?.call);
    expect(entries(run).map((e) => e.call)).toEqual([...succeeded].reverse());
    expect(Object.fromEntries(entries(run).map((e) => [e.call, [e.tool_name, e.status]]))).toEqual({
      1: ["todo_store", "succeeded"],
      2: ["calculator", "skipped"],
      3: ["todo_store", "succeeded"],
    });
    expect(entries(run).every((e) => e.step_number === 1)).toBe(true);
    expect(entries(run).find((e) => e.call === 3)?.tool_input).toMatchObject({ action: "delete" });
    const undone = log.filter((e) => e.type === "compensation.step_succeeded");
    expect(undone.map((e) => e.data?.call)).toEqual([...succeeded].reverse().filter((n) => n !== 2));
  });

  it("undoes the calls of an agent step that itself failed (its budget ran out after an add)", async () => {
    const key = await apiKeyFor("t-agent-saga-fail");
    const text = unique("agent saga budget");
    // The model keeps asking for tool calls: the second turn is its last (max_turns 2).
    scriptedProvider(
      { tool_calls: [add(text)] },
      { tool_calls: [{ name: "text", arguments: { operation: "trim", text: " x " } }] },
    );
    const run = await create(key, [agentStep({ max_turns: 2 })]);
    expect(run.status).toBe("failed");
    expect(run.execution_log[0]?.status).toBe("failed");
    expect(await todoCount(text)).toBe(0);
    expect(entries(run).find((e) => e.call === 1)).toMatchObject({ tool_name: "todo_store", status: "succeeded" });
  });

  it("recovers a call's compensation whose first delivery crashed after the delete: one success, the todo gone", async () => {
    const key = await apiKeyFor("t-agent-saga-crash");
    const text = unique("agent saga crash");
    scriptedProvider({ tool_calls: [add(text)] }, { answer: "added" });
    const seen = new Set<string>();
    const tasks: string[] = [];
    setFaultInjector({
      onMessage(m) {
        if (m.task?.startsWith("compensate")) tasks.push(m.task);
        if (m.task !== "compensate:1" || seen.has(m.run_id)) return undefined;
        seen.add(m.run_id);
        return { throwAfterTool: true };
      },
    });
    const run = await create(key, [agentStep(), failing]);
    expect(run.status).toBe("failed");
    expect(await todoCount(text)).toBe(0);
    // Delivered twice (the crash, then its retry), recorded once: the second attempt's success.
    expect(tasks.length).toBeGreaterThanOrEqual(2);
    expect(tasks.every((t) => t === "compensate:1")).toBe(true);
    expect(entries(run)).toMatchObject([{ step_number: 1, call: 1, status: "succeeded", attempts: 2 }]);
    const log = await events(run.run_id, key);
    expect(log.filter((e) => e.type === "compensation.step_succeeded")).toHaveLength(1);
  });

  it("undoes by its calls an agent step that failed, even when the plan gives it a compensate", async () => {
    const key = await apiKeyFor("t-agent-saga-failed-plan");
    const [text, marker] = [unique("agent saga failed"), unique("agent saga plan undo")];
    scriptedProvider(
      { tool_calls: [add(text)] },
      { tool_calls: [{ name: "text", arguments: { operation: "trim", text: "x" } }] },
    );
    const compensate = { tool_name: "todo_store", tool_input: { action: "add", text: marker } };
    const run = await create(key, [{ ...agentStep({ max_turns: 2 }), compensate }]);
    expect(run.execution_log[0]?.status).toBe("failed");
    // The plan's compensation undoes a success the step never had: its calls are undone instead.
    expect(await todoCount(text)).toBe(0);
    expect(await todoCount(marker)).toBe(0);
    expect(entries(run).find((e) => e.call === 1)).toMatchObject({ tool_name: "todo_store", status: "succeeded" });
  });

  it("runs the plan's own compensation of an agent step instead of its calls'", async () => {
    const key = await apiKeyFor("t-agent-saga-plan");
    const [text, marker] = [unique("agent saga kept"), unique("agent saga undo")];
    scriptedProvider({ tool_calls: [add(text)] }, { answer: "added" });
    const compensate = { tool_name: "todo_store", tool_input: { action: "add", text: marker } };
    const run = await create(key, [{ ...agentStep(), compensate }, failing]);
    expect(run.status).toBe("failed");
    expect(entries(run)).toMatchObject([{ step_number: 1, tool_name: "todo_store", status: "succeeded" }]);
    expect(entries(run)[0]?.call).toBeUndefined();
    expect(await todoCount(marker)).toBe(1);
    expect(await todoCount(text)).toBe(1);
  });

  it("cancel with compensate undoes the calls of a finished agent step while a later step waits", async () => {
    const key = await apiKeyFor("t-agent-saga-cancel");
    const text = unique("agent saga cancel");
    scriptedProvider({ tool_calls: [add(text)] }, { answer: "added" });
    const res = await api("/api/v1/runs", {
      method: "POST",
      key,
      json: {
        prompt: "agent then approval",
        plan: {
          steps: [
            agentStep(),
            { step_number: 2, tool_name: "approval", tool_input: { message: "ok?" }, depends_on: [1] },
          ],
        },
      },
    });
    const created = (await res.json()) as Run;
    const waiting = await eventually(
      "the approval to wait",
      () => getRun(created.run_id, key),
      (r) => r.waiting_for.length > 0,
    );
    expect(await todoCount(text)).toBe(1);
    const cancel = await api(`/api/v1/runs/${waiting.run_id}/cancel`, {
      method: "POST",
      key,
      json: { compensate: true },
    });
    expect(cancel.status).toBe(200);
    const run = await waitForRun(waiting.run_id, 20_000, 25, key);
    expect(run.status).toBe("cancelled");
    expect(await todoCount(text)).toBe(0);
    expect(entries(run)).toMatchObject([{ step_number: 1, call: 1, status: "succeeded" }]);
  });
});
