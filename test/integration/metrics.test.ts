import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { Metrics } from "../../src/contracts/history";
import { database } from "../../src/store/db";
import { runSteps, runs } from "../../src/store/schema";
import { api } from "../helpers/api";
import { eventually } from "../helpers/recovery";
import { apiKeyFor } from "../helpers/tenants";

const TENANT = "t-metrics";
const DAY = "2026-11-20";
let key = "";

/** A run row as the archive writes it, with a chosen status and duration. */
function runRow(id: string, status: string, durationMs: number | null, createdAt = `${DAY}T10:00:00.000Z`) {
  const created = Date.parse(createdAt);
  return {
    runId: id,
    tenant: TENANT,
    prompt: `seeded ${id}`,
    status,
    planner: "explicit",
    plan: null,
    stepCount: 1,
    result: null,
    error: null,
    createdAt,
    startedAt: createdAt,
    completedAt: durationMs === null ? null : new Date(created + durationMs).toISOString(),
    durationMs,
    seq: 10,
    archived: durationMs !== null,
  };
}

function stepRow(runId: string, n: number, tool: string, status: string, durationMs: number | null) {
  return {
    runId,
    stepNumber: n,
    tenant: TENANT,
    toolName: tool,
    toolInput: {},
    status,
    output: null,
    error: null,
    attempts: 1,
    startedAt: durationMs === null ? null : `${DAY}T10:00:00.000Z`,
    completedAt: durationMs === null ? null : new Date(Date.parse(`${DAY}T10:00:00.000Z`) + durationMs).toISOString(),
    durationMs,
    createdAt: `${DAY}T10:00:00.000Z`,
  };
}

beforeAll(async () => {
  key = await apiKeyFor(TENANT);
  const db = database(env.DB);
  const seeded = [
    runRow("r1", "completed", 100),
    runRow("r2", "completed", 200),
    runRow("r3", "completed", 300),
    runRow("r4", "failed", 400),
    runRow("r5", "cancelled", 50),
    runRow("r6", "running", null),
    runRow("r7", "completed", 1000, "2026-11-01T10:00:00.000Z"), // outside the window
  ];
  // One row per statement: D1 binds at most 100 parameters.
  for (const row of seeded) await db.insert(runs).values(row);
  const calculator = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((ms, i) =>
    stepRow("r1", i + 1, "calculator", i === 9 ? "failed" : "succeeded", ms),
  );
  await db.insert(runSteps).values(calculator.slice(0, 5));
  await db.insert(runSteps).values(calculator.slice(5));
  await db
    .insert(runSteps)
    .values([stepRow("r2", 1, "todo_store", "succeeded", 5), stepRow("r2", 2, "todo_store", "skipped", null)]);
});

describe("GET /api/v1/metrics", () => {
  it("matches a hand-computed expectation on a seeded set of runs", async () => {
    const res = await api(`/api/v1/metrics?since=${DAY}T00:00:00Z&until=2026-11-21T00:00:00Z`, { key });
    expect(res.status).toBe(200);
    expect((await res.json()) as Metrics).toEqual({
      since: `${DAY}T00:00:00.000Z`,
      until: "2026-11-21T00:00:00.000Z",
      runs: {
        total: 6,
        by_status: { completed: 3, failed: 1, cancelled: 1, running: 1 },
        success_rate: 0.75, // 3 completed / (3 completed + 1 failed)
        duration_ms: { p50: 200, p95: 400, p99: 400 }, // nearest rank over 100, 200, 300, 400
      },
      steps: { total: 12, by_status: { succeeded: 10, failed: 1, skipped: 1 } },
      compensations: { total: 0, by_status: {} },
      tools: [
        {
          tool: "calculator",
          steps: 10,
          succeeded: 9,
          failed: 1,
          success_rate: 0.9,
          duration_ms: { p50: 50, p95: 100, p99: 100 },
        },
        {
          tool: "todo_store",
          steps: 2,
          succeeded: 1,
          failed: 0,
          success_rate: 1,
          duration_ms: { p50: 5, p95: 5, p99: 5 },
        },
      ],
    });
  });

  it("is empty for a window with no runs, and per tenant", async () => {
    const empty = await api("/api/v1/metrics?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z", { key });
    expect(await empty.json()).toMatchObject({
      runs: { total: 0, by_status: {}, success_rate: null, duration_ms: { p50: null, p95: null, p99: null } },
      tools: [],
    });
    const other = await api(`/api/v1/metrics?since=${DAY}T00:00:00Z&until=2026-11-21T00:00:00Z`);
    expect(((await other.json()) as Metrics).runs.total).toBe(0);
  });

  it("counts runs still running or waiting, which D1 does not hold yet, beside the finished ones", async () => {
    const live = await apiKeyFor("t-metrics-live");
    const since = new Date(Date.now() - 60_000).toISOString();
    const create = async (plan: unknown) => {
      const res = await api("/api/v1/runs", { method: "POST", key: live, json: { prompt: "m", plan } });
      expect(res.status).toBe(201);
      return (await res.json()) as { run_id: string; status: string };
    };
    const waiting = await create({
      steps: [{ step_number: 1, tool_name: "approval", tool_input: { message: "ok?" } }],
    });
    const running = await create({ steps: [{ step_number: 1, tool_name: "wait", tool_input: { ms: 86_400_000 } }] });
    const done = await create({
      steps: [{ step_number: 1, tool_name: "calculator", tool_input: { expression: "1+1" } }],
    });
    // A run parked on an approval or a timer is `running` (its steps wait).
    expect([waiting.status, running.status, done.status]).toEqual(["running", "running", "completed"]);
    const read = async () => {
      const res = await api(`/api/v1/metrics?since=${since}`, { key: live });
      return ((await res.json()) as Metrics).runs;
    };
    // The finished one reaches D1 a moment after it ends; the other two come from the gate at once.
    expect((await read()).by_status.running).toBe(2);
    await eventually("the finished run in D1's counts", read, (r) => r.by_status.completed === 1);
    const r = await read();
    expect(r).toMatchObject({ total: 3, by_status: { running: 2, completed: 1 }, success_rate: 1 });
    for (const id of [waiting.run_id, running.run_id])
      await api(`/api/v1/runs/${id}/cancel`, { method: "POST", key: live });
  });

  it("rejects a bad window with 400", async () => {
    for (const q of ["since=never", "since=2026-11-21T00:00:00Z&until=2026-11-20T00:00:00Z"]) {
      const res = await api(`/api/v1/metrics?${q}`, { key });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/^since must be/);
    }
  });
});
