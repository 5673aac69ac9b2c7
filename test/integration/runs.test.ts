import { describe, expect, it } from "vitest";
import type { Run, RunEvent } from "../../src/contracts/run";
import { api, createRun, getEvents, getRun, runToEnd } from "../helpers/api";

type Entry = Run["execution_log"][number];
/** The output of the run's `index`-th step, failing the test when there is none. */
function outputOf<T>(run: Run, index: number): T {
  const entry = run.execution_log[index];
  if (!entry) throw new Error(`run has no step at index ${index}`);
  return entry.output as T;
}
const overlap = (a: Entry, b: Entry) =>
  Date.parse(a.started_at as string) < Date.parse(b.completed_at as string) &&
  Date.parse(b.started_at as string) < Date.parse(a.completed_at as string);

describe("runs: prompts end to end through the queue", () => {
  it("calculates 5 * 8 → 40 with one log entry", async () => {
    const run = await runToEnd({ prompt: "calculate 5 * 8" });
    expect(run.status).toBe("completed");
    expect(run.result).toBe(40);
    expect(run.error).toBeNull();
    expect(run.execution_log).toHaveLength(1);
    expect(run.execution_log[0]).toMatchObject({
      step_number: 1,
      tool_name: "calculator",
      tool_input: { expression: "5 * 8" },
      status: "succeeded",
      success: true,
      output: 40,
      error: null,
      attempts: 1,
    });
    expect(run.plan?.planner).toBe("rules");
    expect(run.completed_at).not.toBeNull();
  });

  it("answers 201 with the plan already made and a Location header", async () => {
    const res = await api("/api/v1/runs", { method: "POST", json: { prompt: "calculate 1 + 1" } });
    expect(res.status).toBe(201);
    const run = (await res.json()) as Run;
    expect(res.headers.get("Location")).toBe(`/api/v1/runs/${run.run_id}`);
    expect(run.plan?.steps).toHaveLength(1);
    expect(["running", "completed"]).toContain(run.status);
  });

  it("records the event log in order", async () => {
    const run = await runToEnd({ prompt: "calculate 2 + 2" });
    const events = await getEvents(run.run_id);
    expect(events.map((e) => e.type)).toEqual([
      "run.created",
      "run.planned",
      "step.dispatched",
      "step.started",
      "step.succeeded",
      "run.completed",
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await getEvents(run.run_id, 4)).toEqual(events.slice(4));
  });

  it("pages the event log with a Link to the next page, and none after the last", async () => {
    const run = await runToEnd({ prompt: "calculate 2 + 2" });
    const all = await getEvents(run.run_id);
    const seen: number[] = [];
    let next: string | null = `/api/v1/runs/${run.run_id}/events?limit=4`;
    while (next) {
      const res = await api(next);
      expect(res.status).toBe(200);
      seen.push(...((await res.json()) as RunEvent[]).map((e) => e.seq));
      next = res.headers.get("Link")?.match(/^<([^>]+)>; rel="next"$/)?.[1] ?? null;
    }
    expect(seen).toEqual(all.map((e) => e.seq)); // 4 + 2, each once
    // A page that ends exactly at the log's end has no Link.
    const exact = await api(`/api/v1/runs/${run.run_id}/events?limit=${all.length}`);
    expect(exact.headers.get("Link")).toBeNull();
  });

  it("adds a todo and then lists it", async () => {
    const run = await runToEnd({ prompt: "add todo Water the plants then list todos" });
    expect(run.status).toBe("completed");
    const added = outputOf<{ todo: { id: string; text: string; completed: boolean } }>(run, 0).todo;
    expect(added).toMatchObject({ text: "Water the plants", completed: false });
    const listed = outputOf<{ todos: { id: string }[]; total_count: number }>(run, 1);
    expect(listed.todos.map((t) => t.id)).toContain(added.id);
    expect(listed.total_count).toBe(listed.todos.length);
    expect(run.result).toEqual(listed);
  });

  it("runs a three-step mixed prompt", async () => {
    const run = await runToEnd({ prompt: "calculate 100 / 10 and add todo Review results then list todos" });
    expect(run.status).toBe("completed");
    expect(run.execution_log.map((e) => [e.tool_name, e.status])).toEqual([
      ["calculator", "succeeded"],
      ["todo_store", "succeeded"],
      ["todo_store", "succeeded"],
    ]);
    expect(run.execution_log[0]?.output).toBe(10);
    const texts = (run.result as { todos: { text: string }[] }).todos.map((t) => t.text);
    expect(texts).toContain("Review results");
    expect(run.plan?.steps[2]?.depends_on).toEqual([1, 2]);
  });

  it("adds, completes and deletes a todo by reference", async () => {
    const run = await runToEnd({ prompt: "add todo temporary then complete it then delete it" });
    expect(run.status).toBe("completed");
    const id = outputOf<{ todo: { id: string } }>(run, 0).todo.id;
    expect(run.execution_log[1]?.output).toMatchObject({ todo: { id, completed: true } });
    expect(run.execution_log[1]?.tool_input).toEqual({ action: "complete", todo_id: id });
    expect(run.result).toEqual({ deleted: true, todo_id: id });
  });

  it("fails an unparseable prompt with 201 then status failed", async () => {
    const res = await api("/api/v1/runs", { method: "POST", json: { prompt: "tell me a joke" } });
    expect(res.status).toBe(201);
    const run = (await res.json()) as Run;
    expect(run.status).toBe("failed");
    expect(run.error).toMatch(/^Could not parse prompt/);
    expect(run.plan).toBeNull();
    expect(run.execution_log).toEqual([]);
    expect((await getRun(run.run_id)).status).toBe("failed");
  });

  it("fails a run whose step fails, without retrying a non-retryable error", async () => {
    const run = await runToEnd({ prompt: "calculate 1 / 0" });
    expect(run.status).toBe("failed");
    expect(run.error).toBe("Step 1 (calculator) failed: Division by zero");
    expect(run.execution_log[0]).toMatchObject({ status: "failed", success: false, attempts: 1, output: null });
  });

  it("fails a todo step on an unknown id", async () => {
    const run = await runToEnd({ prompt: "complete todo does-not-exist" });
    expect(run.status).toBe("failed");
    expect(run.execution_log[0]?.error).toBe("Todo 'does-not-exist' not found");
  });

  it("keeps two concurrent runs apart", async () => {
    const [a, b] = await Promise.all([
      runToEnd({ prompt: "calculate 6 * 7" }),
      runToEnd({ prompt: "calculate 9 * 9" }),
    ]);
    expect(a?.run_id).not.toBe(b?.run_id);
    expect(a?.result).toBe(42);
    expect(b?.result).toBe(81);
    expect((await getEvents(a?.run_id as string)).every((e) => e.type !== "step.ignored")).toBe(true);
  });
});

describe("runs: explicit plans", () => {
  it("runs three independent 300 ms sleeps in parallel, then the join", async () => {
    const sleep = (n: number) => ({ step_number: n, tool_name: "sleep", tool_input: { ms: 300 } });
    const run = await runToEnd({
      prompt: "three sleeps and a join",
      plan: {
        steps: [
          sleep(1),
          sleep(2),
          sleep(3),
          { step_number: 4, tool_name: "calculator", tool_input: { expression: "1 + 1" }, depends_on: [1, 2, 3] },
        ],
      },
    });
    expect(run.status).toBe("completed");
    expect(run.plan?.planner).toBe("explicit");
    const [s1, s2, s3, join] = run.execution_log as [Entry, Entry, Entry, Entry];
    for (const [a, b] of [
      [s1, s2],
      [s1, s3],
      [s2, s3],
    ] as const) {
      expect(overlap(a, b), "sleep steps ran one after another").toBe(true);
    }
    for (const s of [s1, s2, s3]) {
      expect(Date.parse(join.started_at as string)).toBeGreaterThanOrEqual(Date.parse(s.completed_at as string));
    }
  });

  it("honours max_parallel: 1 by running independent steps one at a time", async () => {
    const sleep = (n: number) => ({ step_number: n, tool_name: "sleep", tool_input: { ms: 50 } });
    const run = await runToEnd({
      prompt: "sequential sleeps",
      plan: { steps: [sleep(1), sleep(2), sleep(3)] },
      options: { max_parallel: 1 },
    });
    const [a, b, c] = run.execution_log as [Entry, Entry, Entry];
    expect(overlap(a, b) || overlap(b, c) || overlap(a, c)).toBe(false);
  });

  it("passes one step's output into another by reference, keeping its type", async () => {
    const run = await runToEnd({
      prompt: "references",
      plan: {
        steps: [
          { step_number: 1, tool_name: "calculator", tool_input: { expression: "12 * 7" } },
          { step_number: 2, tool_name: "calculator", tool_input: { expression: "{{steps.1.output}} + 16" } },
          { step_number: 3, tool_name: "sleep", tool_input: { ms: "{{steps.1.output}}" } },
          {
            step_number: 4,
            tool_name: "text",
            tool_input: { operation: "uppercase", text: "total: {{steps.2.output}}" },
          },
        ],
      },
    });
    expect(run.status).toBe("completed");
    expect(run.execution_log.map((e) => e.output)).toEqual([84, 100, { slept_ms: 84 }, "TOTAL: 100"]);
    expect(run.execution_log[2]?.tool_input).toEqual({ ms: 84 });
    expect(run.plan?.steps.map((s) => s.depends_on)).toEqual([[], [1], [1], [2]]);
  });

  it("fails a step whose resolved input breaks the tool's schema, without retry", async () => {
    const run = await runToEnd({
      prompt: "bad resolved input",
      plan: {
        steps: [
          { step_number: 1, tool_name: "text", tool_input: { operation: "trim", text: "not a number" } },
          { step_number: 2, tool_name: "sleep", tool_input: { ms: "{{steps.1.output}}" } },
        ],
      },
    });
    expect(run.status).toBe("failed");
    expect(run.execution_log[1]).toMatchObject({ status: "failed", attempts: 1 });
    expect(run.execution_log[1]?.error).toMatch(/Invalid input for sleep: ms/);
  });
});

describe("runs: cancellation", () => {
  it("cancels a running run and refuses to cancel it twice", async () => {
    const run = await createRun({
      prompt: "long",
      plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 2000 } }] },
    });
    const res = await api(`/api/v1/runs/${run.run_id}/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    const cancelled = (await res.json()) as Run;
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.error).toBe("Cancelled by request");
    const again = await api(`/api/v1/runs/${run.run_id}/cancel`, { method: "POST" });
    expect(again.status).toBe(409);
    expect(again.headers.get("Content-Type")).toBe("application/problem+json");
  });
});
