import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { setClockOffset } from "../../src/clock";
import type { Problem } from "../../src/contracts/common";
import type { RunSummary } from "../../src/contracts/history";
import type { Run, RunEvent } from "../../src/contracts/run";
import type { Approval, WaitingInfo } from "../../src/contracts/waiting";
import { api, createRun, getEvents, getRun, waitForRun } from "../helpers/api";
import { eventsOf, watch } from "../helpers/live";
import { coordinator, eventually, purged } from "../helpers/recovery";
import { apiKeyFor } from "../helpers/tenants";

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const MAX_WAIT_MS = 365 * DAY;

afterEach(() => setClockOffset(0));

type StepIn = { step_number: number; tool_name: string; tool_input: Record<string, unknown>; depends_on?: number[] };
const plan = (prompt: string, steps: StepIn[], options?: Record<string, unknown>) => ({
  prompt,
  plan: { steps },
  ...(options ? { options } : {}),
});
const approvalStep = (
  n: number,
  message: string,
  deps: number[] = [],
  extra: Record<string, unknown> = {},
): StepIn => ({
  step_number: n,
  tool_name: "approval",
  tool_input: { message, ...extra },
  depends_on: deps,
});
const signalStep = (n: number, name: string, deps: number[] = [], extra: Record<string, unknown> = {}): StepIn => ({
  step_number: n,
  tool_name: "signal",
  tool_input: { name, ...extra },
  depends_on: deps,
});
const waitStep = (n: number, input: Record<string, unknown>, deps: number[] = []): StepIn => ({
  step_number: n,
  tool_name: "wait",
  tool_input: input,
  depends_on: deps,
});
const calc = (n: number, expression: string, deps: number[] = []): StepIn => ({
  step_number: n,
  tool_name: "calculator",
  tool_input: { expression },
  depends_on: deps,
});
const sleepStep = (n: number, ms: number, deps: number[] = []): StepIn => ({
  step_number: n,
  tool_name: "sleep",
  tool_input: { ms },
  depends_on: deps,
});

/** Moves the coordinators' clock by `ms` and runs the run's alarm now (as if that time had come). */
async function alarmAt(runId: string, offsetMs: number, tenant = "dev"): Promise<boolean> {
  setClockOffset(offsetMs);
  return runDurableObjectAlarm(coordinator(tenant, runId));
}

async function post(path: string, json?: unknown, opts: { key?: string | null; headers?: HeadersInit } = {}) {
  return api(path, { method: "POST", ...(json === undefined ? {} : { json }), ...opts });
}

async function createAs(key: string, body: unknown): Promise<Run> {
  const res = await post("/api/v1/runs", body, { key });
  if (res.status !== 201) throw new Error(`expected 201, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as Run;
}

/** Polls `read` until `ok` holds (the argument order of the older helper; `eventually` underneath). */
const until = <T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> =>
  eventually(what, read, ok, timeoutMs);

const stepOf = (run: Run, n: number) => run.execution_log.find((e) => e.step_number === n);
const outputOf = <T>(run: Run, n: number): T => (stepOf(run, n)?.output ?? {}) as T;

/** Waits until step `n` of the run has `status`. */
const stepReaches = (runId: string, n: number, status: string, key?: string) =>
  until(
    () => getRun(runId, key),
    (r) => stepOf(r, n)?.status === status,
    `step ${n} of ${runId} to be ${status}`,
  );

const callbackPath = (url: string | undefined): string => {
  if (!url) throw new Error("no callback_url");
  return new URL(url).pathname;
};

async function problemOf(res: Response): Promise<Problem> {
  expect(res.headers.get("Content-Type")).toContain("application/problem+json");
  return (await res.json()) as Problem;
}

async function inbox(key?: string, query = ""): Promise<{ rows: Approval[]; link: string | null }> {
  const res = await api(`/api/v1/approvals${query}`, key ? { key } : {});
  expect(res.status).toBe(200);
  return { rows: (await res.json()) as Approval[], link: res.headers.get("Link") };
}

const typesOf = (events: RunEvent[], n?: number) =>
  events.filter((e) => n === undefined || e.step_number === n).map((e) => e.type);

describe("wait: durable timers", () => {
  it("a three-day wait holds nothing, survives eviction and wakes from its alarm when its time comes", async () => {
    const run = await createRun(plan("wait then add", [waitStep(1, { ms: 3 * DAY }), calc(2, "1+1", [1])]));
    expect(run.status).toBe("running");
    const w = stepOf(run, 1);
    expect(w).toMatchObject({ status: "waiting", success: null, waiting: { kind: "timer" } });
    const since = Date.parse(w?.waiting?.since ?? "");
    expect(Date.parse(w?.waiting?.until ?? "")).toBe(since + 3 * DAY);
    expect(run.waiting_for).toEqual([{ step_number: 1, ...w?.waiting }]);

    await evictDurableObject(coordinator("dev", run.run_id));
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");
    // A day before its time the alarm changes nothing.
    await alarmAt(run.run_id, 2 * DAY);
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");

    await evictDurableObject(coordinator("dev", run.run_id));
    expect(await alarmAt(run.run_id, 3 * DAY + 1000)).toBe(true);
    const done = await waitForRun(run.run_id);
    expect(done).toMatchObject({ status: "completed", result: 2, waiting_for: [] });
    const out = stepOf(done, 1)?.output as { waited_ms: number; woke_at: string };
    expect(out.waited_ms).toBeGreaterThanOrEqual(3 * DAY);
    expect(Date.parse(out.woke_at)).toBeGreaterThanOrEqual(since + 3 * DAY);
  });

  it("plans a prompt's pause longer than half the step timeout as a durable wait, which completes", async () => {
    // "wait 1 minute" as a sleep could only time out (the default step timeout is 30 s).
    const run = await createRun({ prompt: "wait 1 minute then calculate 1+1", planner: "rules" });
    expect(run.plan?.steps.map((s) => [s.tool_name, s.tool_input])).toEqual([
      ["wait", { ms: 60_000 }],
      ["calculator", { expression: "1+1" }],
    ]);
    expect(stepOf(run, 1)?.status).toBe("waiting");
    expect(await alarmAt(run.run_id, 60_000 + 1000)).toBe(true);
    expect(await waitForRun(run.run_id)).toMatchObject({ status: "completed", result: 2 });
    // The run's own step timeout sets the line: with 1 s, a pause of 1 s is a durable wait too.
    const shorter = await createRun({ prompt: "wait 1 second", planner: "rules", options: { step_timeout_ms: 1000 } });
    expect(shorter.plan?.steps.map((s) => [s.tool_name, s.tool_input])).toEqual([["wait", { ms: 1000 }]]);
    expect(await alarmAt(shorter.run_id, 61_000 + 2000)).toBe(true); // the clock is already 61 s on
    expect((await waitForRun(shorter.run_id)).status).toBe("completed");
  });

  it("waits until an ISO time and wakes then", async () => {
    const at = new Date(Date.now() + 2 * DAY).toISOString();
    const run = await createRun(plan("wait until", [waitStep(1, { until: at })]));
    expect(stepOf(run, 1)?.waiting).toMatchObject({ kind: "timer", until: at });
    await alarmAt(run.run_id, DAY);
    expect((await getRun(run.run_id)).status).toBe("running");
    await alarmAt(run.run_id, 2 * DAY + 1000);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe("completed");
    expect(Date.parse(outputOf<{ woke_at: string }>(done, 1).woke_at)).toBeGreaterThanOrEqual(Date.parse(at));
  });

  it("refuses a wait over 365 days, of nothing, until a past time or until more than 365 days ahead (422)", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ms: MAX_WAIT_MS + 1 }, "plan.steps[0].tool_input.ms"],
      [{ ms: 0 }, "plan.steps[0].tool_input.ms"],
      [{ until: new Date(Date.now() - 60_000).toISOString() }, "plan.steps[0].tool_input.until"],
      [{ until: new Date(Date.now() + MAX_WAIT_MS + DAY).toISOString() }, "plan.steps[0].tool_input.until"],
    ];
    for (const [input, path] of cases) {
      const res = await post("/api/v1/runs", plan("bad wait", [waitStep(1, input)]));
      expect(res.status, JSON.stringify(input)).toBe(422);
      const p = await problemOf(res);
      expect(
        p.errors?.map((e) => e.path),
        JSON.stringify(p),
      ).toContain(path);
    }
    expect((await post("/api/v1/runs", plan("max wait", [waitStep(1, { ms: MAX_WAIT_MS })]))).status).toBe(201);
    for (const input of [{ ms: 1000, until: new Date(Date.now() + DAY).toISOString() }, {}]) {
      const res = await post("/api/v1/runs", plan("bad wait", [waitStep(1, input)]));
      expect((await problemOf(res)).detail).toBe(
        "Invalid plan: plan.steps[0].tool_input: wait takes either ms or until, exactly one",
      );
    }
  });
});

describe("wait with references", () => {
  const text = (n: number, value: string): StepIn => ({
    step_number: n,
    tool_name: "text",
    tool_input: { operation: "trim", text: value },
  });

  it("takes ms or until from another step's output, and checks them when they resolve", async () => {
    // ms from a reference is accepted like any other field (it was refused by the union schema).
    const byMs = await createRun(plan("ms ref", [calc(1, "2 * 25"), waitStep(2, { ms: "{{steps.1.output}}" }, [1])]));
    const done = await waitForRun(byMs.run_id);
    expect(done.status).toBe("completed");
    expect(stepOf(done, 2)?.output).toMatchObject({ waited_ms: expect.any(Number) });
    const waited = (await getEvents(byMs.run_id)).find((e) => e.type === "step.waiting");
    expect(waited?.data?.input).toEqual({ ms: 50 });
    // A resolved until must lie ahead and within 365 days, as a literal one must at validation.
    for (const until of ["2099-01-01T00:00:00Z", "2020-01-01T00:00:00Z"]) {
      const run = await createRun(
        plan("until ref", [text(1, until), waitStep(2, { until: "{{steps.1.output}}" }, [1])]),
      );
      const done = await waitForRun(run.run_id);
      expect(done.status, until).toBe("failed");
      expect(stepOf(done, 2)?.error, until).toMatch(/^Invalid input for wait: until: until must be /);
    }
  });

  it("names a bad ms by its field, not as a missing choice", async () => {
    const res = await post("/api/v1/runs", plan("bad ms", [waitStep(1, { ms: 1.5 })]));
    expect((await problemOf(res)).errors).toEqual([
      { path: "plan.steps[0].tool_input.ms", message: "ms must be an integer" },
    ]);
  });
});

describe("approval", () => {
  it("waits for a decision, shows it with a callback URL, and an approval completes the run", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy v2?"), calc(2, "1+1", [1])]));
    const w = stepOf(run, 1)?.waiting;
    expect(w).toMatchObject({ kind: "approval", until: null, message: "Deploy v2?" });
    expect(w?.callback_url).toMatch(/^http:\/\/crane\.test\/api\/v1\/callbacks\/[A-Za-z0-9._-]{40,}$/);
    expect(run.waiting_for).toEqual([{ step_number: 1, ...w }]);

    const res = await post(`/api/v1/runs/${run.run_id}/steps/1/approve`, { comment: "ship it", data: { ticket: 7 } });
    expect(res.status).toBe(200);
    const after = (await res.json()) as Run;
    expect(stepOf(after, 1)).toMatchObject({
      status: "succeeded",
      success: true,
      output: { approved: true, comment: "ship it", data: { ticket: 7 }, decided_by: "api" },
    });
    expect(Date.parse(outputOf<{ decided_at: string }>(after, 1).decided_at)).not.toBeNaN();
    const done = await waitForRun(run.run_id);
    expect(done).toMatchObject({ status: "completed", result: 2, waiting_for: [] });
  });

  it("takes an empty body sent with a JSON Content-Type as no body (approve, cancel)", async () => {
    const empty = { method: "POST", body: "", headers: { "Content-Type": "application/json" } };
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?"), approvalStep(2, "Again?", [1])]));
    const approved = await api(`/api/v1/runs/${run.run_id}/steps/1/approve`, empty);
    expect(approved.status).toBe(200);
    await stepReaches(run.run_id, 2, "waiting");
    const cancelled = await api(`/api/v1/runs/${run.run_id}/cancel`, empty);
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as Run).status).toBe("cancelled");
    // A body that is there must still be JSON.
    expect((await api(`/api/v1/runs/${run.run_id}/cancel`, { ...empty, body: "{" })).status).toBe(400);
  });

  it("a rejection fails the step, not retried, with the reason, and the run fails", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?"), calc(2, "1+1", [1])]));
    const res = await post(`/api/v1/runs/${run.run_id}/steps/1/reject`, { reason: "too risky" });
    expect(res.status).toBe(200);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe("failed");
    expect(stepOf(done, 1)).toMatchObject({
      status: "failed",
      success: false,
      error: "Rejected: too risky",
      attempts: 1,
    });
    expect(stepOf(done, 2)?.status).toBe("skipped");
    expect(done.error).toContain("Rejected: too risky");
    expect(typesOf(await getEvents(run.run_id))).not.toContain("step.retry_scheduled");
  });

  it("times out into a rejection after two days, woken by its alarm", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?", [], { timeout_ms: 2 * DAY })]));
    const w = stepOf(run, 1)?.waiting;
    expect(Date.parse(w?.until ?? "")).toBe(Date.parse(w?.since ?? "") + 2 * DAY);
    await alarmAt(run.run_id, 2 * DAY + 1000);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe("failed");
    expect(stepOf(done, 1)).toMatchObject({ status: "failed", error: "Approval timed out", attempts: 1 });
  });

  it("times out into an approval with on_timeout approve, even after eviction", async () => {
    const run = await createRun(
      plan("deploy", [
        approvalStep(1, "Deploy?", [], { timeout_ms: HOUR, on_timeout: "approve" }),
        calc(2, "2+2", [1]),
      ]),
    );
    await evictDurableObject(coordinator("dev", run.run_id));
    await alarmAt(run.run_id, HOUR + 1000);
    const done = await waitForRun(run.run_id);
    expect(done).toMatchObject({ status: "completed", result: 4 });
    expect(stepOf(done, 1)?.output).toMatchObject({ approved: true, comment: null, data: null, decided_by: "timeout" });
  });

  it("an approval waits across eviction and is decided afterwards", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?"), calc(2, "3+3", [1])]));
    await evictDurableObject(coordinator("dev", run.run_id));
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");
    expect((await post(`/api/v1/runs/${run.run_id}/steps/1/approve`)).status).toBe(200);
    expect(await waitForRun(run.run_id)).toMatchObject({ status: "completed", result: 6 });
  });

  it("answers 409 whose detail says why a decision does not fit", async () => {
    const run = await createRun(
      plan("two approvals", [approvalStep(1, "first?"), approvalStep(2, "second?", [1]), calc(3, "1", [2])]),
    );
    const id = run.run_id;
    const expect409 = async (path: string, detail: string) => {
      const res = await post(`/api/v1/runs/${id}/steps/${path}`);
      expect(res.status, path).toBe(409);
      expect((await problemOf(res)).detail).toBe(detail);
    };
    await expect409("3/approve", "Step 3 is a calculator step, not an approval");
    await expect409("3/reject", "Step 3 is a calculator step, not an approval");
    await expect409("2/approve", "Step 2 has not been reached yet; it is not waiting for a decision");
    await expect409("2/reject", "Step 2 has not been reached yet; it is not waiting for a decision");
    expect((await post(`/api/v1/runs/${id}/steps/1/approve`)).status).toBe(200);
    await expect409("1/approve", "Step 1 was already decided (approved)");
    await expect409("1/reject", "Step 1 was already decided (approved)");
    expect((await post(`/api/v1/runs/${id}/steps/2/approve`)).status).toBe(200);
    await waitForRun(id);
    await expect409("2/approve", `Run '${id}' already finished with status completed`);
    await expect409("2/reject", `Run '${id}' already finished with status completed`);
  });

  it("answers a decision on a run served from the archive as before: 404 for a step it lacks, else 409", async () => {
    const run = await createRun(plan("decided", [approvalStep(1, "ok?")]));
    expect((await post(`/api/v1/runs/${run.run_id}/steps/1/approve`)).status).toBe(200);
    await waitForRun(run.run_id);
    await purged(run.run_id);
    for (const action of ["approve", "reject"]) {
      const missing = await post(`/api/v1/runs/${run.run_id}/steps/9/${action}`);
      expect(missing.status, action).toBe(404);
      expect((await problemOf(missing)).detail).toBe(`Run '${run.run_id}' has no step 9`);
      const finished = await post(`/api/v1/runs/${run.run_id}/steps/1/${action}`);
      expect(finished.status, action).toBe(409);
      expect((await problemOf(finished)).detail).toBe(`Run '${run.run_id}' already finished with status completed`);
    }
  });

  it("refuses a decision on a cancelled run with 409", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?")]));
    expect((await post(`/api/v1/runs/${run.run_id}/cancel`)).status).toBe(200);
    const res = await post(`/api/v1/runs/${run.run_id}/steps/1/approve`);
    expect(res.status).toBe(409);
    expect((await problemOf(res)).detail).toBe(`Run '${run.run_id}' already finished with status cancelled`);
  });

  it("answers 404 for an unknown run, an unknown step and another tenant's run", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?")]));
    const unknown = "01920000-0000-7000-8000-000000000000";
    for (const path of [
      `/api/v1/runs/${unknown}/steps/1/approve`,
      `/api/v1/runs/${unknown}/steps/1/reject`,
      "/api/v1/runs/not-a-run/steps/1/approve",
      `/api/v1/runs/${run.run_id}/steps/99/approve`,
      `/api/v1/runs/${run.run_id}/steps/99/reject`,
    ]) {
      const res = await post(path);
      expect(res.status, path).toBe(404);
      await problemOf(res);
    }
    const other = await apiKeyFor(`other-${crypto.randomUUID()}`);
    for (const action of ["approve", "reject"]) {
      const res = await post(`/api/v1/runs/${run.run_id}/steps/1/${action}`, undefined, { key: other });
      expect(res.status).toBe(404);
      expect((await problemOf(res)).detail).toBe(`Run '${run.run_id}' not found`);
    }
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");
  });

  it("refuses oversized or malformed decision bodies with 422 and leaves the step waiting", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?")]));
    const bodies: [string, unknown][] = [
      ["approve", { comment: "x".repeat(2001) }],
      ["approve", { data: "x".repeat(64 * 1024) }],
      ["approve", { approved: true }],
      ["reject", { reason: "x".repeat(2001) }],
      ["reject", { reason: 42 }],
    ];
    for (const [action, body] of bodies) {
      const res = await post(`/api/v1/runs/${run.run_id}/steps/1/${action}`, body);
      expect(res.status, `${action} ${JSON.stringify(body).slice(0, 60)}`).toBe(422);
      expect((await problemOf(res)).errors?.length).toBeGreaterThan(0);
    }
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");
    // Data just under the limit is fine.
    const ok = await post(`/api/v1/runs/${run.run_id}/steps/1/approve`, { data: "x".repeat(60 * 1024) });
    expect(ok.status).toBe(200);
  });

  it("a step_number in the path that is not a whole number is 400 naming it, as a bad signal name is", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?")]));
    for (const step of ["abc", "1.5", "-1", "1e2", "123456", "%201"]) {
      for (const action of ["approve", "reject"]) {
        const res = await post(`/api/v1/runs/${run.run_id}/steps/${step}/${action}`);
        expect(res.status, `${action} ${step}`).toBe(400);
        const problem = await problemOf(res);
        expect(problem.detail).toBe("step_number must be a whole number: the number of a step of the run's plan");
        expect(problem.errors?.[0]?.path).toBe("step_number");
      }
    }
    // A well-formed number that is no step of the plan names nothing: 404.
    expect((await post(`/api/v1/runs/${run.run_id}/steps/7/approve`)).status).toBe(404);
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");
  });
});

describe("signal", () => {
  it("a signal completes the step waiting for its name with its data (202)", async () => {
    const run = await createRun(plan("pay", [signalStep(1, "payment_received"), calc(2, "5*5", [1])]));
    expect(stepOf(run, 1)?.waiting).toMatchObject({ kind: "signal", name: "payment_received", until: null });
    expect(stepOf(run, 1)?.waiting?.callback_url).toMatch(/\/api\/v1\/callbacks\//);
    const res = await post(`/api/v1/runs/${run.run_id}/signals/payment_received`, { data: { amount: 42 } });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({
      run_id: run.run_id,
      name: "payment_received",
      delivered_to: 1,
      buffered: false,
    });
    const done = await waitForRun(run.run_id);
    expect(done).toMatchObject({ status: "completed", result: 25 });
    expect(stepOf(done, 1)?.output).toMatchObject({ name: "payment_received", data: { amount: 42 } });
    const received = (await getEvents(run.run_id)).find((e) => e.type === "signal.received");
    expect(received?.data).toMatchObject({ name: "payment_received", data: { amount: 42 }, delivered_to: 1 });
  });

  it("keeps a signal sent before its step waits and hands it over when the step does (the race)", async () => {
    const run = await createRun(plan("race", [approvalStep(1, "go?"), signalStep(2, "go", [1])]));
    const res = await post(`/api/v1/runs/${run.run_id}/signals/go`, { data: "early" });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ run_id: run.run_id, name: "go", delivered_to: null, buffered: true });
    expect(stepOf(await getRun(run.run_id), 2)?.status).toBe("pending");
    await evictDurableObject(coordinator("dev", run.run_id));
    expect((await post(`/api/v1/runs/${run.run_id}/steps/1/approve`)).status).toBe(200);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe("completed");
    expect(stepOf(done, 2)?.output).toMatchObject({ name: "go", data: "early" });
    const received = (await getEvents(run.run_id)).filter((e) => e.type === "signal.received");
    expect(received.map((e) => e.data)).toMatchObject([{ name: "go", data: "early", delivered_to: null }]);
  });

  it("matches a signal step's name made from a reference by what it resolves to, waiting or not yet", async () => {
    const lower = (n: number, text: string): StepIn => ({
      step_number: n,
      tool_name: "text",
      tool_input: { operation: "lowercase", text },
    });
    // Waiting: the name it resolved to ("payment") is the one a signal must carry. (Under the queue
    // placement the text step runs through the queue first: wait for the run to get there.)
    const run = await createRun(plan("dynamic", [lower(1, "PAYMENT"), signalStep(2, "{{steps.1.output}}", [1])]));
    const waiting = await eventually(
      "step 2 waiting",
      () => getRun(run.run_id),
      (r) => stepOf(r, 2)?.status === "waiting",
    );
    expect(stepOf(waiting, 2)?.waiting).toMatchObject({ kind: "signal", name: "payment" });
    const res = await post(`/api/v1/runs/${run.run_id}/signals/payment`, { data: 7 });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ delivered_to: 2, buffered: false });
    expect(stepOf(await waitForRun(run.run_id), 2)?.output).toMatchObject({ name: "payment", data: 7 });
    // Not waiting yet, its reference resolved already: a signal is kept for it.
    const early = await createRun(
      plan("dynamic early", [lower(1, "GO"), approvalStep(2, "go?"), signalStep(3, "{{steps.1.output}}", [1, 2])]),
    );
    await eventually(
      "step 1 done",
      () => getRun(early.run_id),
      (r) => stepOf(r, 1)?.status === "succeeded",
    );
    const kept = await post(`/api/v1/runs/${early.run_id}/signals/go`, { data: "early" });
    expect(await kept.json()).toMatchObject({ delivered_to: null, buffered: true });
    expect((await post(`/api/v1/runs/${early.run_id}/steps/2/approve`)).status).toBe(200);
    expect(stepOf(await waitForRun(early.run_id), 3)?.output).toMatchObject({ name: "go", data: "early" });
    // A name that cannot be known yet (its step has not run) takes no signal.
    const unknown = await createRun(
      plan("dynamic unknown", [approvalStep(1, "go?"), signalStep(2, "{{steps.1.output.comment}}", [1])]),
    );
    expect((await post(`/api/v1/runs/${unknown.run_id}/signals/x`)).status).toBe(409);
  });

  it("gives two signals to two steps of that name and refuses a third with 409", async () => {
    const run = await createRun(
      plan("two", [approvalStep(1, "go?"), signalStep(2, "go", [1]), signalStep(3, "go", [1])]),
    );
    const send = (data: string) => post(`/api/v1/runs/${run.run_id}/signals/go`, { data });
    expect((await send("first")).status).toBe(202);
    expect((await send("second")).status).toBe(202);
    const third = await send("third");
    expect(third.status).toBe(409);
    expect((await problemOf(third)).detail).toBe(
      `Every unfinished step of run '${run.run_id}' that waits for signal 'go' already has one kept for it ` +
        "(2 received before the step started waiting); another has no step to go to",
    );
    await post(`/api/v1/runs/${run.run_id}/steps/1/approve`);
    const done = await waitForRun(run.run_id);
    const got = [2, 3].map((n) => outputOf<{ data: string }>(done, n).data).sort();
    expect(got).toEqual(["first", "second"]);
  });

  it("answers 409 for a name no step waits for and for a finished run", async () => {
    const run = await createRun(plan("sig", [signalStep(1, "go")]));
    const stray = await post(`/api/v1/runs/${run.run_id}/signals/stop`);
    expect(stray.status).toBe(409);
    expect((await problemOf(stray)).detail).toBe(`No unfinished step of run '${run.run_id}' waits for signal 'stop'`);
    expect((await post(`/api/v1/runs/${run.run_id}/signals/go`)).status).toBe(202);
    await waitForRun(run.run_id);
    const late = await post(`/api/v1/runs/${run.run_id}/signals/go`);
    expect(late.status).toBe(409);
    expect((await problemOf(late)).detail).toBe(`Run '${run.run_id}' already finished with status completed`);
  });

  it("answers 404 for an unknown or another tenant's run", async () => {
    const run = await createRun(plan("sig", [signalStep(1, "go")]));
    expect((await post("/api/v1/runs/01920000-0000-7000-8000-000000000001/signals/go")).status).toBe(404);
    const other = await apiKeyFor(`other-${crypto.randomUUID()}`);
    const res = await post(`/api/v1/runs/${run.run_id}/signals/go`, { data: 1 }, { key: other });
    expect(res.status).toBe(404);
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");
  });

  it("refuses bad signal names in the path with 400 naming them, and data over 64 KiB with 422", async () => {
    const run = await createRun(plan("sig", [signalStep(1, "go")]));
    for (const name of ["bad%20name", "x".repeat(65), "x".repeat(500), "caf%C3%A9", "a%3Bb"]) {
      const res = await post(`/api/v1/runs/${run.run_id}/signals/${name}`);
      expect(res.status, name).toBe(400);
      const problem = await problemOf(res);
      expect(problem.detail, name).toBe("name must be a signal name: 1–64 letters, digits, '_', '.' or '-'");
      expect(problem.errors?.[0]?.path).toBe("name");
    }
    // As long as a valid one, the longest allowed: no step waits for it.
    expect((await post(`/api/v1/runs/${run.run_id}/signals/${"x".repeat(64)}`)).status).toBe(409);
    const big = await post(`/api/v1/runs/${run.run_id}/signals/go`, { data: "x".repeat(64 * 1024) });
    expect(big.status).toBe(422);
    expect((await problemOf(big)).detail).toContain("data");
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");
  });

  it("refuses invalid approval and signal inputs in a plan with 422", async () => {
    const bad: StepIn[] = [
      approvalStep(1, ""),
      approvalStep(1, "x".repeat(2001)),
      approvalStep(1, "ok?", [], { timeout_ms: 999 }),
      approvalStep(1, "ok?", [], { timeout_ms: MAX_WAIT_MS + 1 }),
      approvalStep(1, "ok?", [], { on_timeout: "maybe" }),
      signalStep(1, "go", [], { timeout_ms: 500 }),
      signalStep(1, "go", [], { timeout_ms: MAX_WAIT_MS + 1 }),
    ];
    for (const step of bad) {
      const res = await post("/api/v1/runs", plan("bad", [step]));
      expect(res.status, JSON.stringify(step.tool_input).slice(0, 80)).toBe(422);
      expect((await problemOf(res)).errors?.[0]?.path).toMatch(/^plan\.steps\[0\]\.tool_input/);
    }
  });

  it("refuses a bad signal step name in a plan with 422", async () => {
    for (const name of ["", "bad name", "x".repeat(65)]) {
      const res = await post("/api/v1/runs", plan("bad", [signalStep(1, name)]));
      expect(res.status, name).toBe(422);
    }
  });

  it("replays the same answer for a repeated Idempotency-Key and refuses the key with another body (422)", async () => {
    const run = await createRun(plan("sig", [approvalStep(1, "go?"), signalStep(2, "go", [1])]));
    const send = (data: unknown, key = "sig-key-1") =>
      post(`/api/v1/runs/${run.run_id}/signals/go`, { data }, { headers: { "Idempotency-Key": key } });
    const first = await send({ n: 1 });
    expect(first.status).toBe(202);
    const answer = await first.json();
    expect(answer).toEqual({ run_id: run.run_id, name: "go", delivered_to: null, buffered: true });
    const replay = await send({ n: 1 });
    expect(replay.status).toBe(202);
    expect(await replay.json()).toEqual(answer);
    const conflict = await send({ n: 2 });
    expect(conflict.status).toBe(422);
    await problemOf(conflict);
    // Only one signal was kept: a new one (another key) has nobody left to take it.
    expect((await send({ n: 3 }, "sig-key-2")).status).toBe(409);
    await post(`/api/v1/runs/${run.run_id}/steps/1/approve`);
    const done = await waitForRun(run.run_id);
    expect(stepOf(done, 2)?.output).toMatchObject({ data: { n: 1 } });
    expect((await getEvents(run.run_id)).filter((e) => e.type === "signal.received")).toHaveLength(1);
  });

  it("marks a replayed signal with Idempotent-Replayed: true, as POST /runs does", async () => {
    const run = await createRun(plan("sig", [signalStep(1, "go")]));
    const send = () =>
      post(`/api/v1/runs/${run.run_id}/signals/go`, { data: 1 }, { headers: { "Idempotency-Key": "replayed-1" } });
    const first = await send();
    expect(first.status).toBe(202);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    const replay = await send();
    expect(replay.status).toBe(202);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
  });

  it("replays a signal's answer after the run left its object (served from the archive), as before", async () => {
    const run = await createRun(plan("sig", [signalStep(1, "go")]));
    const send = (data: unknown) =>
      post(`/api/v1/runs/${run.run_id}/signals/go`, { data }, { headers: { "Idempotency-Key": "archived-1" } });
    const first = await send(1);
    expect(first.status).toBe(202);
    const answer = await first.json();
    await waitForRun(run.run_id);
    await purged(run.run_id);
    const replay = await send(1);
    expect(replay.status).toBe(202);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await replay.json()).toEqual(answer);
    expect((await send(2)).status).toBe(422);
    // A key not used on this run is a new signal, which a finished run refuses.
    const fresh = await post(`/api/v1/runs/${run.run_id}/signals/go`, {}, { headers: { "Idempotency-Key": "new" } });
    expect(fresh.status).toBe(409);
  });

  it("times out after its timeout_ms: the step fails, not retried", async () => {
    const run = await createRun(plan("sig", [signalStep(1, "go", [], { timeout_ms: 6 * HOUR })]));
    await alarmAt(run.run_id, 6 * HOUR + 1000);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe("failed");
    expect(stepOf(done, 1)).toMatchObject({ error: "Timed out waiting for signal 'go'", attempts: 1 });
  });
});

describe("callback URLs", () => {
  const ip = () => `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
  const call = (path: string, json?: unknown, address = ip()) =>
    post(path, json, { key: null, headers: { "CF-Connecting-IP": address } });

  it("approves without an API key, works once, and answers only run_id, step_number and accepted", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?"), calc(2, "7*6", [1])]));
    const path = callbackPath(stepOf(run, 1)?.waiting?.callback_url);
    const res = await call(path, { approve: true, comment: "from chat" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ run_id: run.run_id, step_number: 1, accepted: true });
    const done = await waitForRun(run.run_id);
    expect(done).toMatchObject({ status: "completed", result: 42 });
    expect(stepOf(done, 1)?.output).toMatchObject({ approved: true, comment: "from chat", decided_by: "callback" });
    const again = await call(path, { approve: true });
    expect(again.status).toBe(404);
  });

  it("rejects via the callback with a reason", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?")]));
    const res = await call(callbackPath(stepOf(run, 1)?.waiting?.callback_url), { approve: false, reason: "nope" });
    expect(res.status).toBe(200);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe("failed");
    expect(stepOf(done, 1)?.error).toBe("Rejected: nope");
  });

  it("delivers a signal via the callback, once", async () => {
    const run = await createRun(plan("ci", [signalStep(1, "ci.done")]));
    const path = callbackPath(stepOf(run, 1)?.waiting?.callback_url);
    const res = await call(path, { data: { build: 9 } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ run_id: run.run_id, step_number: 1, accepted: true });
    const done = await waitForRun(run.run_id);
    expect(stepOf(done, 1)?.output).toMatchObject({ name: "ci.done", data: { build: 9 } });
    const received = (await getEvents(run.run_id)).find((e) => e.type === "signal.received");
    expect(received?.data).toMatchObject({ name: "ci.done", data: { build: 9 }, delivered_to: 1 });
    expect((await call(path, { data: 2 })).status).toBe(404);
  });

  it("refuses an approval's fields on a signal step's callback (422) and leaves the step waiting", async () => {
    const run = await createRun(plan("ci", [signalStep(1, "ci.done")]));
    const path = callbackPath(stepOf(run, 1)?.waiting?.callback_url);
    for (const body of [
      { approve: false, reason: "no" },
      { comment: "hi", data: 1 },
    ]) {
      const res = await call(path, body);
      expect(res.status).toBe(422);
      expect((await problemOf(res)).detail).toMatch(
        /is for an approval step; a signal step's callback takes only data$/,
      );
    }
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");
    expect((await call(path, { data: 1 })).status).toBe(200);
  });

  it("gives each waiting step its own unguessable token", async () => {
    const run = await createRun(plan("two", [approvalStep(1, "a?"), approvalStep(2, "b?"), signalStep(3, "s")]));
    const urls = run.waiting_for.map((w) => w.callback_url ?? "");
    expect(urls).toHaveLength(3);
    expect(new Set(urls).size).toBe(3);
    for (const url of urls) {
      const token = url.slice(url.lastIndexOf("/") + 1);
      const secret = token.slice(token.indexOf(".") + 1);
      // ≥ 128 random bits as base64url: at least 22 characters.
      expect(secret).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    }
    expect((await call(callbackPath(urls[1]), { approve: true })).status).toBe(200);
    const after = await getRun(run.run_id);
    expect(stepOf(after, 1)?.status).toBe("waiting");
    expect(stepOf(after, 2)?.status).toBe("succeeded");
  });

  it("answers the same 404 for a made-up, a used, an expired and a cancelled run's token", async () => {
    const used = await createRun(plan("used", [approvalStep(1, "a?")]));
    const usedPath = callbackPath(stepOf(used, 1)?.waiting?.callback_url);
    expect((await call(usedPath, { approve: true })).status).toBe(200);

    const expired = await createRun(plan("expired", [approvalStep(1, "a?", [], { timeout_ms: 1000 })]));
    const expiredPath = callbackPath(stepOf(expired, 1)?.waiting?.callback_url);
    await alarmAt(expired.run_id, 5000);
    await waitForRun(expired.run_id);
    setClockOffset(0);

    const cancelled = await createRun(plan("cancelled", [signalStep(1, "s")]));
    const cancelledPath = callbackPath(stepOf(cancelled, 1)?.waiting?.callback_url);
    expect((await post(`/api/v1/runs/${cancelled.run_id}/cancel`)).status).toBe(200);

    const objectId = usedPath.split("/").at(-1)?.split(".")[0] ?? "";
    const madeUp = [
      `/api/v1/callbacks/${"0".repeat(64)}.${"A".repeat(32)}`,
      `/api/v1/callbacks/${objectId}.${"B".repeat(32)}`, // the run's real object, a wrong secret
      "/api/v1/callbacks/nonsense",
      `/api/v1/callbacks/${"a".repeat(5000)}`, // longer than any token: unknown, not a bad parameter
    ];
    const answers: Problem[] = [];
    for (const path of [usedPath, expiredPath, cancelledPath, ...madeUp]) {
      const res = await call(path, { approve: true });
      expect(res.status, path).toBe(404);
      const p = await problemOf(res);
      answers.push({ ...p, instance: undefined });
      expect(JSON.stringify(p)).not.toContain(used.run_id);
    }
    for (const a of answers) expect(a).toEqual(answers[0]);
  });

  it("needs approve in an approval's callback (422) and keeps the token usable", async () => {
    const run = await createRun(plan("deploy", [approvalStep(1, "Deploy?")]));
    const path = callbackPath(stepOf(run, 1)?.waiting?.callback_url);
    expect((await call(path, { comment: "hm" })).status).toBe(422);
    expect((await call(path, { approve: true })).status).toBe(200);
  });

  it("rate-limits callbacks per client address with 429 and Retry-After", async () => {
    const address = "203.0.113.77";
    let limited: Response | null = null;
    for (let i = 0; i < 80 && !limited; i++) {
      const res = await call(`/api/v1/callbacks/${"0".repeat(64)}.${"C".repeat(32)}`, { approve: true }, address);
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(404);
    }
    expect(limited?.status).toBe(429);
    expect(limited?.headers.get("Retry-After")).toMatch(/^\d+$/);
    // Another address is not limited by it.
    expect((await call(`/api/v1/callbacks/${"0".repeat(64)}.${"C".repeat(32)}`, {}, "203.0.113.78")).status).toBe(404);
  });
});

describe("a timeout decides, even before the alarm has run", () => {
  // The clock moves past the deadline but the alarm (set for the real time an hour from now) has
  // not fired yet: a command arriving now must not beat the timeout that is already due.
  it("an approval after its timeout passed is refused with 409 and the step timed out", async () => {
    const run = await createRun(plan("late", [approvalStep(1, "ok?", [], { timeout_ms: HOUR })]));
    setClockOffset(HOUR + 1000);
    const res = await post(`/api/v1/runs/${run.run_id}/steps/1/approve`);
    expect(res.status).toBe(409);
    const done = await waitForRun(run.run_id);
    expect(stepOf(done, 1)).toMatchObject({ status: "failed", error: "Approval timed out" });
  });

  it("a callback after its step's timeout passed is 404: the token expired", async () => {
    const run = await createRun(plan("late", [approvalStep(1, "ok?", [], { timeout_ms: HOUR })]));
    setClockOffset(HOUR + 1000);
    const res = await post(callbackPath(stepOf(run, 1)?.waiting?.callback_url), { approve: true }, { key: null });
    expect(res.status).toBe(404);
    const done = await waitForRun(run.run_id);
    expect(stepOf(done, 1)).toMatchObject({ status: "failed", error: "Approval timed out" });
  });

  it("a signal after its step's timeout passed is refused with 409", async () => {
    const run = await createRun(plan("late", [signalStep(1, "go", [], { timeout_ms: HOUR })]));
    setClockOffset(HOUR + 1000);
    const res = await post(`/api/v1/runs/${run.run_id}/signals/go`, { data: 1 });
    expect(res.status).toBe(409);
    const done = await waitForRun(run.run_id);
    expect(stepOf(done, 1)).toMatchObject({ status: "failed", error: "Timed out waiting for signal 'go'" });
  });
});

describe("decisions race: each is taken once", () => {
  it("of concurrent signals for one waiting step, exactly one is taken and the rest refused", async () => {
    const run = await createRun(plan("race", [signalStep(1, "go")]));
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => post(`/api/v1/runs/${run.run_id}/signals/go`, { data: n })),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([202, 409, 409, 409, 409]);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe("completed");
    expect((await getEvents(run.run_id)).filter((e) => e.type === "signal.received")).toHaveLength(1);
  });

  it("of a concurrent approve and reject, exactly one wins", async () => {
    const run = await createRun(plan("race", [approvalStep(1, "ok?")]));
    const [approve, reject] = await Promise.all([
      post(`/api/v1/runs/${run.run_id}/steps/1/approve`),
      post(`/api/v1/runs/${run.run_id}/steps/1/reject`),
    ]);
    expect([approve.status, reject.status].sort()).toEqual([200, 409]);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe(approve.status === 200 ? "completed" : "failed");
  });

  it("of concurrent uses of one callback URL, exactly one is accepted", async () => {
    const run = await createRun(plan("race", [signalStep(1, "go")]));
    const path = callbackPath(stepOf(run, 1)?.waiting?.callback_url);
    const answers = await Promise.all([1, 2, 3].map((n) => post(path, { data: n }, { key: null })));
    expect(answers.map((r) => r.status).sort()).toEqual([200, 404, 404]);
  });
});

describe("the approval inbox", () => {
  it("lists the tenant's waiting approvals oldest first, with paging by limit, cursor and Link", async () => {
    const key = await apiKeyFor(`inbox-${crypto.randomUUID()}`);
    const runs: Run[] = [];
    runs.push(await createAs(key, plan("prompt first", [approvalStep(1, "approve first?")])));
    runs.push(await createAs(key, plan("prompt second", [approvalStep(1, "second a?"), approvalStep(2, "second b?")])));
    runs.push(await createAs(key, plan("prompt third", [approvalStep(1, "third?", [], { timeout_ms: DAY })])));
    // What the inbox must hold: every waiting approval, oldest first (ties in a stable order).
    const expected: Approval[] = runs
      .flatMap((r) =>
        r.waiting_for.map((w) => ({
          run_id: r.run_id,
          step_number: w.step_number,
          message: w.message ?? "",
          since: w.since,
          timeout_at: w.until,
          prompt: r.prompt,
        })),
      )
      .sort((x, y) =>
        x.since !== y.since
          ? x.since.localeCompare(y.since)
          : x.run_id !== y.run_id
            ? x.run_id.localeCompare(y.run_id)
            : x.step_number - y.step_number,
      );
    expect(expected).toHaveLength(4);
    expect(expected.map((e) => e.since)).toEqual(runs.flatMap((r) => r.waiting_for.map((w) => w.since)));
    expect(expected.find((e) => e.message === "third?")?.timeout_at).not.toBeNull();

    const all = await until(
      () => inbox(key),
      (v) => v.rows.length === 4,
      "four approvals in the inbox",
    );
    expect(all.link).toBeNull();
    expect(all.rows).toEqual(expected);

    const pages: Approval[][] = [];
    let query: string | undefined = "?limit=3";
    while (query !== undefined) {
      const page = await inbox(key, query);
      pages.push(page.rows);
      const next = /^<([^>]+)>; rel="next"$/.exec(page.link ?? "")?.[1];
      if (next) expect(next).toMatch(/^\/api\/v1\/approvals\?.*cursor=/);
      query = next?.slice("/api/v1/approvals".length);
      expect(pages.length).toBeLessThan(5);
    }
    expect(pages.map((p) => p.length)).toEqual([3, 1]);
    expect(pages.flat()).toEqual(expected);

    expect((await api("/api/v1/approvals?limit=0", { key })).status).toBe(400);
    expect((await api("/api/v1/approvals?limit=101", { key })).status).toBe(400);
    expect((await api("/api/v1/approvals?cursor=garbage!", { key })).status).toBe(400);
  });

  it("pages by 10 unless told otherwise, and takes limit 1–100, as GET /runs does", async () => {
    const key = await apiKeyFor(`inbox-${crypto.randomUUID()}`);
    const steps = Array.from({ length: 11 }, (_, i) => approvalStep(i + 1, `question ${i + 1}?`));
    await createAs(key, plan("eleven questions", steps));
    const all = await until(
      () => inbox(key, "?limit=100"),
      (v) => v.rows.length === 11,
      "eleven approvals in the inbox",
    );
    expect(all.link).toBeNull();
    const first = await inbox(key);
    expect(first.rows).toEqual(all.rows.slice(0, 10));
    expect(first.link).toMatch(/^<\/api\/v1\/approvals\?cursor=[^>]+>; rel="next"$/);
    for (const limit of ["0", "101", "1e1", "-1", "abc", "5.0"]) {
      const res = await api(`/api/v1/approvals?limit=${limit}`, { key });
      expect(res.status, limit).toBe(400);
      expect((await problemOf(res)).detail, limit).toBe("limit must be an integer between 1 and 100");
    }
    expect((await inbox(key, "?limit=100")).rows).toHaveLength(11);
    expect((await inbox(key, "?limit=1")).rows).toHaveLength(1);
  });

  it("an approval leaves the inbox when it is approved, rejected, cancelled or times out", async () => {
    const tenant = `inbox-${crypto.randomUUID()}`;
    const key = await apiKeyFor(tenant);
    const make = (msg: string, extra: Record<string, unknown> = {}) =>
      createAs(key, plan(msg, [approvalStep(1, msg, [], extra)]));
    const approved = await make("approved");
    const rejected = await make("rejected");
    const cancelled = await make("cancelled");
    const timedOut = await make("timed out", { timeout_ms: 2 * HOUR });
    const stays = await make("stays");
    await until(
      () => inbox(key),
      (v) => v.rows.length === 5,
      "five approvals",
    );

    expect((await post(`/api/v1/runs/${approved.run_id}/steps/1/approve`, undefined, { key })).status).toBe(200);
    expect((await post(`/api/v1/runs/${rejected.run_id}/steps/1/reject`, undefined, { key })).status).toBe(200);
    expect((await post(`/api/v1/runs/${cancelled.run_id}/cancel`, undefined, { key })).status).toBe(200);
    await alarmAt(timedOut.run_id, 2 * HOUR + 1000, tenant);
    setClockOffset(0);
    await waitForRun(timedOut.run_id, 15_000, 20, key);

    const left = await until(
      () => inbox(key),
      (v) => v.rows.length === 1,
      "only one approval left",
    );
    expect(left.rows.map((a) => a.run_id)).toEqual([stays.run_id]);
  });

  it("another tenant never sees a tenant's approvals", async () => {
    const keyA = await apiKeyFor(`inbox-a-${crypto.randomUUID()}`);
    const keyB = await apiKeyFor(`inbox-b-${crypto.randomUUID()}`);
    const run = await createAs(keyA, plan("secret deploy", [approvalStep(1, "secret?")]));
    await until(
      () => inbox(keyA),
      (v) => v.rows.some((a) => a.run_id === run.run_id),
      "A sees its approval",
    );
    const seenByB = await inbox(keyB);
    expect(seenByB.rows).toEqual([]);
    const mine = await inbox();
    expect(mine.rows.map((a) => a.run_id)).not.toContain(run.run_id);
  });
});

describe("live events", () => {
  it("streams step.waiting and signal.received over the WebSocket like every event", async () => {
    const run = await createRun(plan("live", [signalStep(1, "go"), approvalStep(2, "ok?", [1])]));
    const { session } = await watch(run.run_id, { after: 0, timeoutMs: 15_000 });
    const count = (await getEvents(run.run_id)).length;
    await session.received(1 + count);
    expect((await post(`/api/v1/runs/${run.run_id}/signals/go`, { data: "hi" })).status).toBe(202);
    const waiting = await stepReaches(run.run_id, 2, "waiting");
    expect((await post(`/api/v1/runs/${run.run_id}/steps/2/approve`)).status).toBe(200);
    expect(await session.closed).toBe(1000);

    const events = eventsOf(session.messages);
    expect(events).toEqual(await getEvents(run.run_id));
    const types = typesOf(events);
    expect(types).toEqual(
      expect.arrayContaining(["step.waiting", "signal.received", "step.succeeded", "run.completed"]),
    );
    const idx = (t: string, n?: number) =>
      events.findIndex((e) => e.type === t && (n === undefined || e.step_number === n));
    expect(idx("step.waiting", 1)).toBeLessThan(idx("signal.received"));
    expect(idx("signal.received")).toBeLessThan(idx("step.succeeded", 1));
    expect(idx("step.succeeded", 1)).toBeLessThan(idx("step.waiting", 2));
    expect(events.find((e) => e.type === "signal.received")?.data).toMatchObject({
      name: "go",
      data: "hi",
      delivered_to: 1,
    });
    expect(events[idx("step.waiting", 2)]?.step_number).toBe(2);
    expect(stepOf(waiting, 2)?.waiting?.kind).toBe("approval");
  });

  it("a watcher of a waiting run keeps its socket across eviction and sees the alarm wake the run", async () => {
    const run = await createRun(plan("sleepy", [waitStep(1, { ms: 5 * DAY }), calc(2, "6*7", [1])]));
    const { session } = await watch(run.run_id, { after: 0, timeoutMs: 15_000 });
    await session.received(1 + (await getEvents(run.run_id)).length);
    await evictDurableObject(coordinator("dev", run.run_id));
    await alarmAt(run.run_id, 5 * DAY + 1000);
    expect(await session.closed).toBe(1000);
    const events = eventsOf(session.messages);
    expect(events).toEqual(await getEvents(run.run_id));
    expect(typesOf(events, 1)).toEqual(["step.waiting", "step.succeeded"]);
    expect(events.at(-1)?.type).toBe("run.completed");
  });

  it("a step.waiting event's data is the step's waiting object", async () => {
    const run = await createRun(plan("data", [approvalStep(1, "Deploy?", [], { timeout_ms: DAY })]));
    const waiting = stepOf(run, 1)?.waiting as WaitingInfo;
    const event = (await getEvents(run.run_id)).find((e) => e.type === "step.waiting");
    expect(event?.step_number).toBe(1);
    expect(event?.data).toMatchObject({ ...waiting });
  });
});

describe("quotas: a parked run gives back its active slot", () => {
  const admin = (json: unknown) =>
    api("/api/v1/admin/api-keys", { method: "POST", json, headers: { Authorization: "Bearer crane-dev-admin" } });
  const keyWith = async (tenant: string, max_active_runs: number) => {
    const res = await admin({ tenant, name: "quota", max_active_runs });
    expect(res.status).toBe(201);
    return ((await res.json()) as { api_key: string }).api_key;
  };

  it("a key with max_active_runs 2 holds more runs parked on approvals and still starts new runs", async () => {
    const tenant = `quota-${crypto.randomUUID()}`;
    const key = await keyWith(tenant, 2);
    const parked: Run[] = [];
    for (let i = 0; i < 4; i++) {
      parked.push(await createAs(key, plan(`parked ${i}`, [approvalStep(1, `go ${i}?`), calc(2, "1+1", [1])])));
    }
    // Long enough to hold both active slots while the third POST is refused; short, because the
    // queue consumer runs it to its end even after the run is cancelled.
    const slow = plan("slow", [sleepStep(1, 3000)]);
    const a = await post("/api/v1/runs", slow, { key });
    const b = await post("/api/v1/runs", slow, { key });
    expect([a.status, b.status]).toEqual([201, 201]);
    // The active-run quota still holds for runs that really run.
    const c = await post("/api/v1/runs", slow, { key });
    expect(c.status).toBe(429);

    const listed = await until(
      async () => (await (await api("/api/v1/runs?limit=100", { key })).json()) as RunSummary[],
      (rows) => rows.length === 6,
      "six runs listed",
    );
    for (const p of parked) expect(listed.find((r) => r.run_id === p.run_id)?.status).toBe("running");

    // Approving a parked run is never refused by the quota, even with both active slots taken.
    expect((await post(`/api/v1/runs/${parked[0]?.run_id}/steps/1/approve`, undefined, { key })).status).toBe(200);
    expect((await waitForRun(parked[0]?.run_id as string, 15_000, 20, key)).status).toBe("completed");

    const others = [((await a.json()) as Run).run_id, ((await b.json()) as Run).run_id, ...parked.map((p) => p.run_id)];
    for (const id of others) await post(`/api/v1/runs/${id}/cancel`, undefined, { key });
  });

  it("a run that starts to wait mid-way gives its slot back", async () => {
    const key = await keyWith(`quota-${crypto.randomUUID()}`, 1);
    const run = await createAs(key, plan("then wait", [sleepStep(1, 50), approvalStep(2, "continue?", [1])]));
    await stepReaches(run.run_id, 2, "waiting", key);
    const next = await until(
      () => post("/api/v1/runs", plan("calc", [sleepStep(1, 10)]), { key }),
      (res) => res.status !== 429,
      "a new run admitted",
    );
    expect(next.status).toBe(201);
    await waitForRun(((await next.json()) as Run).run_id, 15_000, 20, key);
    await post(`/api/v1/runs/${run.run_id}/cancel`, undefined, { key });
  });
});

describe("cancel, retention and what a wait holds", () => {
  it("cancel ends every wait: steps cancelled, the approval leaves the inbox, signals and callbacks refused", async () => {
    const key = await apiKeyFor(`cancel-${crypto.randomUUID()}`);
    const run = await createAs(
      key,
      plan("many waits", [
        approvalStep(1, "a?"),
        waitStep(2, { ms: DAY }),
        signalStep(3, "go"),
        calc(4, "1", [1, 2, 3]),
      ]),
    );
    expect(run.waiting_for.map((w) => w.step_number)).toEqual([1, 2, 3]);
    await until(
      () => inbox(key),
      (v) => v.rows.length === 1,
      "the approval in the inbox",
    );
    const res = await post(`/api/v1/runs/${run.run_id}/cancel`, undefined, { key });
    expect(res.status).toBe(200);
    const cancelled = (await res.json()) as Run;
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.waiting_for).toEqual([]);
    expect(cancelled.execution_log.map((e) => e.status)).toEqual(["cancelled", "cancelled", "cancelled", "skipped"]);
    await until(
      () => inbox(key),
      (v) => v.rows.length === 0,
      "the inbox empty",
    );
    expect((await post(`/api/v1/runs/${run.run_id}/signals/go`, undefined, { key })).status).toBe(409);
    expect(
      (await post(callbackPath(stepOf(run, 1)?.waiting?.callback_url), { approve: true }, { key: null })).status,
    ).toBe(404);
  });

  it("a run that waits for weeks keeps its storage: retention starts only when it ends", async () => {
    const run = await createRun(plan("long", [approvalStep(1, "later?"), calc(2, "8+1", [1])]));
    setClockOffset(30 * DAY);
    await runDurableObjectAlarm(coordinator("dev", run.run_id));
    await evictDurableObject(coordinator("dev", run.run_id));
    expect(stepOf(await getRun(run.run_id), 1)?.status).toBe("waiting");
    const res = await post(`/api/v1/runs/${run.run_id}/steps/1/approve`);
    expect(res.status).toBe(200);
    expect(await waitForRun(run.run_id)).toMatchObject({ status: "completed", result: 9 });
  });

  it("a waiting step is never put on the queue: its events are step.waiting then its outcome", async () => {
    const run = await createRun(
      plan("no queue", [waitStep(1, { ms: HOUR }), approvalStep(2, "a?"), signalStep(3, "s"), calc(4, "2", [1, 2, 3])]),
    );
    await post(`/api/v1/runs/${run.run_id}/signals/s`);
    await post(`/api/v1/runs/${run.run_id}/steps/2/approve`);
    await alarmAt(run.run_id, HOUR + 1000);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe("completed");
    const events = await getEvents(run.run_id);
    for (const n of [1, 2, 3]) expect(typesOf(events, n)).toEqual(["step.waiting", "step.succeeded"]);
    expect(typesOf(events, 4)).toContain("step.succeeded");
  });

  it("a run with nothing waiting has waiting_for []", async () => {
    const run = await createRun(plan("plain", [calc(1, "1+2")]));
    expect(run.waiting_for).toEqual([]);
    expect((await waitForRun(run.run_id)).waiting_for).toEqual([]);
  });
});

describe("rules planner", () => {
  it("plans 'add todo ship then ask for approval to deploy then calculate 1+1', waits for the approval and completes", async () => {
    const run = await createRun({ prompt: "add todo ship then ask for approval to deploy then calculate 1+1" });
    expect(run.plan?.steps.map((s) => s.tool_name)).toEqual(["todo_store", "approval", "calculator"]);
    expect(run.plan?.steps[1]?.tool_input).toEqual({ message: "deploy" });
    const waiting = await stepReaches(run.run_id, 2, "waiting");
    expect(waiting.status).toBe("running");
    expect(stepOf(waiting, 1)?.status).toBe("succeeded");
    expect(stepOf(waiting, 3)?.status).toBe("pending");
    expect((await post(`/api/v1/runs/${run.run_id}/steps/2/approve`)).status).toBe(200);
    const done = await waitForRun(run.run_id);
    expect(done).toMatchObject({ status: "completed", result: 2 });
  });
});
