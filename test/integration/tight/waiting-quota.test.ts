import { expect, it } from "vitest";
import type { Run } from "../../../src/contracts/run";
import { api } from "../../helpers/api";

// This project bounds waiting runs: MAX_WAITING_RUNS is 2 per tenant.

async function keyWith(tenant: string, max_active_runs: number): Promise<string> {
  const res = await api("/api/v1/admin/api-keys", {
    method: "POST",
    key: "crane-dev-admin",
    json: { tenant, name: "quota", max_active_runs },
  });
  return ((await res.json()) as { api_key: string }).api_key;
}

const approvalRun = (key: string) =>
  api("/api/v1/runs", {
    method: "POST",
    key,
    json: {
      prompt: "needs a person",
      plan: { steps: [{ step_number: 1, tool_name: "approval", tool_input: { message: "ok?" } }] },
    },
  });

it("past MAX_WAITING_RUNS a parked run keeps an active slot, so the active quota bounds it", async () => {
  const key = await keyWith("t-waiting-cap", 1);
  // Two parked runs fill the waiting quota without taking the one active slot.
  for (let i = 0; i < 2; i++) expect((await approvalRun(key)).status, `parked run ${i + 1}`).toBe(201);
  // The third waits too, but only in the active slot; a fourth finds no slot at all.
  const third = await approvalRun(key);
  expect(third.status).toBe(201);
  expect(((await third.json()) as Run).status).toBe("running");
  const fourth = await approvalRun(key);
  expect(fourth.status).toBe(429);
  expect(((await fourth.json()) as { detail: string }).detail).toBe(
    "Tenant 't-waiting-cap' already has 1 active runs; the limit for this key is 1. Retry when one finishes",
  );
});
