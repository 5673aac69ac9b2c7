import { expect, it } from "vitest";
import type { RunEvent } from "../../../src/contracts/run";
import { createRun, getEvents, waitForRun } from "../../helpers/api";

// This project lets one tenant have 2 steps in flight per consumer isolate (TENANT_STEPS_PER_CONSUMER).
const SHARE = 2;

/** Most steps whose [started, finished] intervals overlap at one moment, from the run's own events. */
function maxConcurrent(events: RunEvent[]): number {
  const edges: [number, number][] = [];
  for (const e of events) {
    if (e.type === "step.started") edges.push([Date.parse(e.at), 1]);
    if (e.type === "step.succeeded" || e.type === "step.failed") edges.push([Date.parse(e.at), -1]);
  }
  // At equal times, ends before starts: a step that finishes as another starts is not overlapping.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) {
    now += d;
    most = Math.max(most, now);
  }
  return most;
}

// Six slow steps arrive together: two run, two wait in the consumer for a slot of their tenant
// (the line is as long as the share), two go back through the queue to wait their turn.
it("bounds a tenant's steps in flight in a consumer: the rest wait their turn, none fails for it", {
  timeout: 60_000,
}, async () => {
  const created = await createRun({
    prompt: "a flood of slow steps",
    options: { max_parallel: 6 },
    plan: { steps: [1, 2, 3, 4, 5, 6].map((n) => ({ step_number: n, tool_name: "sleep", tool_input: { ms: 400 } })) },
  });
  const run = await waitForRun(created.run_id, 45_000, 50);
  expect(run.status).toBe("completed");
  // Waiting for a turn is not a failure: every step ran once, on its first attempt.
  expect(run.execution_log.map((e) => e.attempts)).toEqual([1, 1, 1, 1, 1, 1]);
  const events = await getEvents(created.run_id);
  expect(events.filter((e) => e.type === "step.dispatched")).toHaveLength(6);
  // Exactly the share: steps did run side by side, and never more than the share of them.
  expect(maxConcurrent(events)).toBe(SHARE);
});
