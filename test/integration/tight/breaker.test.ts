import { afterEach, expect, it } from "vitest";
import type { ToolDescriptor } from "../../../src/contracts/tool";
import { setFaultInjector } from "../../../src/faults";
import { api, createRun, getEvents, waitForRun } from "../../helpers/api";
import { eventually } from "../../helpers/recovery";
import { apiKeyFor } from "../../helpers/tenants";

afterEach(() => setFaultInjector(null));

async function breakerOf(tool: string, key?: string) {
  const tools = (await (await api("/api/v1/tools", key ? { key } : {})).json()) as ToolDescriptor[];
  return tools.find((t) => t.name === tool)?.breaker;
}

// This project's config: the breaker opens after 3 failures in 30 s and cools down for 1 s.
it("opens on a failing tool, fails fast, probes, closes, and the run finishes once the tool recovers", async () => {
  let upstreamDown = true;
  let toolCalls = 0;
  setFaultInjector({
    onMessage: (m) => {
      if (m.step_number !== 1 || m.tenant !== "dev") return undefined;
      toolCalls++;
      return upstreamDown ? { failTool: true } : undefined;
    },
  });
  const created = await createRun({
    prompt: "flaky upstream",
    options: { max_attempts: 10, retry: { base_delay_ms: 50, factor: 1, max_delay_ms: 50 } },
    // A queued tool (sleep): its attempts meet the consumer's breaker whatever the placement.
    plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 1 } }] },
  });

  // Three real failures open the breaker; the next attempt is refused without running the tool.
  const events = await eventually(
    "an attempt refused by the open breaker",
    () => getEvents(created.run_id),
    (es) => es.some((e) => e.data?.reason === "circuit_open"),
    10_000,
  );
  const retries = events.filter((e) => e.type === "step.retry_scheduled");
  expect(retries.slice(0, 3).map((e) => e.data?.reason)).toEqual(["transient", "transient", "transient"]);
  const fastFail = retries.find((e) => e.data?.reason === "circuit_open");
  expect(fastFail?.data?.error).toBe("Circuit breaker for sleep is open");
  // The retry waits for the breaker to half-open, not for the (50 ms) backoff.
  expect(fastFail?.data?.delay_ms as number).toBeGreaterThan(100);
  expect(await breakerOf("sleep")).toMatchObject({ state: "open", failures: 3 });

  // Another tenant's sleep steps are not refused by this tenant's open breaker, and it does not see it.
  const other = await apiKeyFor("t-breaker-other");
  const theirs = await api("/api/v1/runs", {
    method: "POST",
    key: other,
    json: { prompt: "unaffected", plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 1 } }] } },
  });
  const theirRun = await waitForRun(((await theirs.json()) as { run_id: string }).run_id, 10_000, 20, other);
  expect(theirRun).toMatchObject({ status: "completed", result: { slept_ms: 1 } });
  expect(theirRun.execution_log[0]?.attempts).toBe(1);
  expect(await breakerOf("sleep", other)).toMatchObject({ state: "closed", failures: 0 });

  // (While the other run went, a half-open probe may have met the failing tool and opened the
  // breaker again: the count starts when the upstream recovers.)
  const callsBeforeRecovery = toolCalls;
  upstreamDown = false;
  const run = await waitForRun(created.run_id, 20_000);
  expect(run).toMatchObject({ status: "completed", result: { slept_ms: 1 } });
  // Once the upstream recovered, one delivery (the half-open probe) finished the run.
  expect(toolCalls).toBe(callsBeforeRecovery + 1);
  expect(await breakerOf("sleep")).toMatchObject({ state: "closed", failures: 0, opened_at: null });
  // Other tools' breakers were never touched.
  expect(await breakerOf("calculator")).toMatchObject({ state: "closed", failures: 0 });
});
