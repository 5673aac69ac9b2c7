import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import type { Run } from "../../src/contracts/run";
import { setFaultInjector } from "../../src/faults";
import { pinLogLevel } from "../../src/observability/log";
import { api, DEV_KEY, waitForRun } from "../helpers/api";
import { apiKeyFor } from "../helpers/tenants";

let spy: MockInstance<typeof console.log>;
const lines = () => spy.mock.calls.map((args) => String(args[0]));
const records = () => lines().map((l) => JSON.parse(l) as Record<string, unknown>);

beforeEach(() => {
  pinLogLevel("debug");
  spy = vi.spyOn(console, "log");
});
afterEach(() => {
  pinLogLevel(null);
  setFaultInjector(null);
  spy.mockRestore();
});

/** Waits until a line matching `match` was logged (logs of the consumer trail the run's end). */
async function logged(match: (r: Record<string, unknown>) => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!records().some(match)) {
    if (Date.now() > deadline) throw new Error("expected log line never came");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("structured logs", () => {
  it("follow a run end to end under the caller's trace id and request id, through the queue, a retry and a failure", async () => {
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    let hung = false;
    setFaultInjector({
      onMessage: (m) => {
        if (m.step_number !== 1 || hung) return undefined;
        hung = true;
        return { hangMs: 1000 };
      },
    });
    const secret = await apiKeyFor("t-logs");
    const res = await api("/api/v1/runs", {
      method: "POST",
      key: secret,
      headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01`, "X-Request-Id": "req-logs-1" },
      json: {
        prompt: "observable",
        options: { step_timeout_ms: 300 },
        plan: {
          steps: [
            // Through the queue whatever the placement; it hangs once, past its timeout, and is retried.
            { step_number: 1, tool_name: "sleep", tool_input: { ms: 1 } },
            // Inline by default: its attempt gets the same line as a queued one.
            { step_number: 2, tool_name: "calculator", tool_input: { expression: "1 / 0" }, depends_on: [1] },
          ],
        },
      },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("traceparent")).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    const { run_id } = (await res.json()) as Run;
    const run = await waitForRun(run_id, 15_000, 20, secret);
    expect(run.status).toBe("failed");
    await logged((r) => r.msg === "step attempt failed" && r.step_number === 2);

    const all = lines();
    for (const line of all) expect(() => JSON.parse(line), line).not.toThrow();
    const ofRun = records().filter((r) => r.run_id === run_id);
    expect(ofRun.length).toBeGreaterThanOrEqual(8);
    for (const r of ofRun) {
      expect(r.trace_id, JSON.stringify(r)).toBe(traceId);
      // Lines written by the coordinator carry the request that created the run.
      if (typeof r.msg === "string" && r.msg.startsWith("run."))
        expect(r.request_id, JSON.stringify(r)).toBe("req-logs-1");
      expect(r.tenant).toBe("t-logs");
      expect(typeof r.at).toBe("string");
      expect(["debug", "info", "warn", "error"]).toContain(r.level);
    }
    const msgs = ofRun.map((r) => `${r.msg}${r.step_number ? `#${r.step_number}` : ""}`);
    expect(msgs).toEqual(
      expect.arrayContaining([
        "run.created",
        "step.retry_scheduled#1",
        "step attempt failed#1",
        "step attempt succeeded#1",
        "step.failed#2",
        "step attempt failed#2",
        "run.failed",
      ]),
    );
    const retry = ofRun.find((r) => r.msg === "step.retry_scheduled");
    expect(retry).toMatchObject({ step_number: 1, attempt: 1, tool: "sleep", reason: "timeout" });
    const failed = ofRun.find((r) => r.msg === "step attempt failed" && r.step_number === 2);
    expect(failed).toMatchObject({
      attempt: 1,
      tool: "calculator",
      error: { name: "math_error", message: "Division by zero", retryable: false },
    });
    expect(typeof failed?.span_id).toBe("string");
    expect(typeof failed?.duration_ms).toBe("number");

    const request = records().find((r) => r.msg === "request" && r.request_id === "req-logs-1");
    expect(request).toMatchObject({
      method: "POST",
      path: "/api/v1/runs",
      status: 201,
      tenant: "t-logs",
      trace_id: traceId,
      run_id,
    });

    // No line anywhere carries a key.
    for (const line of all) {
      expect(line).not.toContain(secret);
      expect(line).not.toContain(DEV_KEY);
    }
  });

  it("never logs the key of a rejected request or of a WebSocket subprotocol", async () => {
    await api("/api/v1/runs/nope", { key: "sk-should-never-appear" });
    await api("/api/v1/runs/nope/live", {
      key: null,
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "crane.v1, bearer.sk-also-secret" },
    });
    const all = lines();
    expect(all.some((l) => l.includes('"status":401'))).toBe(true);
    for (const line of all) {
      expect(line).not.toContain("sk-should-never-appear");
      expect(line).not.toContain("sk-also-secret");
    }
  });

  it("makes a trace id when the request has none, and returns it", async () => {
    const res = await api("/api/v1/runs", { method: "POST", json: { prompt: "calculate 1 + 1" } });
    const header = res.headers.get("traceparent") ?? "";
    expect(header).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const { run_id } = (await res.json()) as Run;
    const events = (await (await api(`/api/v1/runs/${run_id}/events`)).json()) as { data?: { trace_id?: string } }[];
    expect(events[0]?.data?.trace_id).toBe(header.split("-")[1]);
  });
});
