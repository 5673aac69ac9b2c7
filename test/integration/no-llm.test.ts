import { describe, expect, it } from "vitest";
import { api, createRun, getEvents, waitForRun } from "../helpers/api";

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

  it.each(["llm", "agent"])(
    "refuses a plan with an %s step at validation (422 naming the missing provider)",
    async (tool) => {
      const input = tool === "llm" ? { prompt: "hi" } : { goal: "add two numbers" };
      const res = await api("/api/v1/runs", {
        method: "POST",
        json: { prompt: "x", plan: { steps: [{ step_number: 1, tool_name: tool, tool_input: input }] } },
      });
      expect(res.status).toBe(422);
      const problem = (await res.json()) as { detail: string; errors: { path: string; message: string }[] };
      expect(problem.detail).toContain("no LLM provider is configured");
      expect(problem.errors).toEqual([
        { path: "plan.steps[0].tool_name", message: `${tool} needs an LLM provider: no LLM provider is configured` },
      ]);
    },
  );
});
