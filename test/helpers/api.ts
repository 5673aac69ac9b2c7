import { exports } from "cloudflare:workers";
import type { Run, RunEvent } from "../../src/contracts/run";

export const DEV_KEY = "crane-dev-key";
const ORIGIN = "http://crane.test";

/** Calls the Worker's fetch handler in-process, with the development API key unless told otherwise. */
export async function api(
  path: string,
  init: RequestInit & { json?: unknown; key?: string | null } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = init.key === undefined ? DEV_KEY : init.key;
  if (key !== null && !headers.has("Authorization")) headers.set("Authorization", `Bearer ${key}`);
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  }
  return exports.default.fetch(new Request(`${ORIGIN}${path}`, { ...init, headers, body }));
}

export async function createRun(json: unknown): Promise<Run> {
  const res = await api("/api/v1/runs", { method: "POST", json });
  if (res.status !== 201) throw new Error(`expected 201, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as Run;
}

export async function getRun(runId: string, key?: string): Promise<Run> {
  const res = await api(`/api/v1/runs/${runId}`, key ? { key } : {});
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as Run;
}

export async function getEvents(runId: string, after = 0): Promise<RunEvent[]> {
  const res = await api(`/api/v1/runs/${runId}/events?after=${after}`);
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as RunEvent[];
}

const FINISHED = new Set(["completed", "failed", "cancelled"]);

/** Polls until the run is finished; fails after `timeoutMs` instead of hanging. */
export async function waitForRun(runId: string, timeoutMs = 15_000, pollMs = 20, key?: string): Promise<Run> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await getRun(runId, key);
    if (FINISHED.has(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Creates a run and waits for it to finish. */
export async function runToEnd(json: unknown, timeoutMs?: number): Promise<Run> {
  const created = await createRun(json);
  return waitForRun(created.run_id, timeoutMs);
}
