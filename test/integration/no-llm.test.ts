import { describe, expect, it } from "vitest";
import { createRun, getEvents, waitForRun } from "../helpers/api";

// The default test config has no LLM provider (as `npm run dev` has none).
describe("without an LLM provider", () => {
  it("auto uses the rules planner and records no LLM call", async () => {
    const created = await createRun({ prompt: "calculate 2 * 21" });
    const run = await waitForRun(created.run_id);
    expect(run).toMatchObject({ status: "completed", result: 42, plan: { planner: "rules" } });
    const types = (await getEvents(created.run_id)).map((e) => e.type);
    expect(types).not.toContain("plan.llm_call");
    expect(types).not.toContain("plan.fallback");
  });

  it("planner: llm fails the run with a clear error", async () => {
    const run = await createRun({ prompt: "calculate 1 + 1", planner: "llm" });
    expect(run.status).toBe("failed");
    expect(run.error).toBe(
      "The llm planner was requested but no LLM provider is configured (set LLM_BASE_URL and LLM_MODEL, or bind AI and set LLM_MODEL)",
    );
  });

  it("the llm tool fails without retry", async () => {
    const run = await waitForRun(
      (
        await createRun({
          prompt: "x",
          plan: { steps: [{ step_number: 1, tool_name: "llm", tool_input: { prompt: "hi" } }] },
        })
      ).run_id,
    );
    expect(run.execution_log[0]).toMatchObject({
      status: "failed",
      attempts: 1,
      error: "No LLM provider is configured (LLM_BASE_URL and LLM_MODEL, or AI)",
    });
  });
});
