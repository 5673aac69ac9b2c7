import { describe, expect, it } from "vitest";
import { api, createRun, getEvents, runToEnd } from "../helpers/api";

describe("POST /api/v1/runs", () => {
  it("calculates 5 * 8 → 40 with one log entry", async () => {
    const run = await runToEnd({ prompt: "calculate 5 * 8" });
    expect(run.status).toBe("completed");
    expect(run.result).toBe(40);
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
  });

  it("answers 201 with the plan already made and a Location header", async () => {
    const res = await api("/api/v1/runs", { method: "POST", json: { prompt: "calculate 1 + 1" } });
    expect(res.status).toBe(201);
    const run = (await res.json()) as { run_id: string; plan: { steps: unknown[] } };
    expect(res.headers.get("Location")).toBe(`/api/v1/runs/${run.run_id}`);
    expect(run.plan.steps).toHaveLength(1);
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
  });

  it("creates a run that is pending work right after the 201", async () => {
    const run = await createRun({ prompt: "calculate 3 * 3" });
    expect(["running", "completed"]).toContain(run.status);
  });
});
