import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Problem } from "../../src/contracts/common";
import type { RunSummary } from "../../src/contracts/history";
import type { StepInput } from "../../src/contracts/plan";
import type { Run, RunEvent } from "../../src/contracts/run";
import { setFaultInjector } from "../../src/faults";
import { pinLogLevel } from "../../src/observability/log";
import { api, createRun, getEvents, getRun, waitForRun } from "../helpers/api";
import { todoCount } from "../helpers/faults";
import { eventsOf, watch } from "../helpers/live";
import {
  compensationOutcomes,
  coordinator,
  eventsLike,
  eventually,
  firstDelivery,
  held,
  isCompensation,
  purged,
  taskKey,
  waitForEnd,
} from "../helpers/recovery";
import { apiKeyFor } from "../helpers/tenants";

afterEach(() => setFaultInjector(null));

const unique = (label: string) => `${label} ${crypto.randomUUID().slice(0, 8)}`;
const FAST = { step_timeout_ms: 500, max_attempts: 4 };

const addTodo = (n: number, text: string, extra: Partial<StepInput> = {}): StepInput => ({
  step_number: n,
  tool_name: "todo_store",
  tool_input: { action: "add", text },
  ...extra,
});

/** A step that fails for good (division by zero is not retried). */
const failing = (n: number, depends_on: number[]): StepInput => ({
  step_number: n,
  tool_name: "calculator",
  tool_input: { expression: "1 / 0" },
  depends_on,
});

/** Two todo adds, then a step that fails: under `compensate` both todos are deleted again. */
function saga(a: string, b: string, options: Record<string, unknown> = {}) {
  return {
    prompt: `saga ${a}`,
    options: { ...FAST, on_failure: "compensate", ...options },
    plan: { steps: [addTodo(1, a), addTodo(2, b), failing(3, [2])] },
  };
}

async function cancel(runId: string, json?: unknown): Promise<Response> {
  return api(`/api/v1/runs/${runId}/cancel`, { method: "POST", ...(json === undefined ? {} : { json }) });
}

/** The run finished, its compensation completed, every compensation ran to one success, and the todos are gone. */
async function expectUndone(run: Run, texts: string[], steps: number[]): Promise<RunEvent[]> {
  expect(run.compensation?.status, JSON.stringify(run.compensation)).toBe("completed");
  expect(run.compensation?.steps.map((s) => [s.step_number, s.status])).toEqual(steps.map((n) => [n, "succeeded"]));
  for (const text of texts) expect(await todoCount(text), `todos "${text}"`).toBe(0);
  const events = await getEvents(run.run_id);
  const outcomes = compensationOutcomes(events);
  expect([...outcomes.keys()].sort()).toEqual([...steps].sort());
  for (const [step, o] of outcomes) expect(o, `compensation of step ${step}`).toEqual(["compensation.step_succeeded"]);
  return events;
}

async function todoCompleted(id: string): Promise<boolean | null> {
  const row = await env.DB.prepare("SELECT completed FROM todos WHERE id = ?").bind(id).first<{ completed: number }>();
  return row ? row.completed === 1 : null;
}

describe("compensation (saga) through the real Worker", () => {
  it("deletes the todos a run added when a later step fails for good, and fails the run after the compensation", async () => {
    const [a, b] = [unique("saga a"), unique("saga b")];
    const run = await waitForEnd((await createRun(saga(a, b))).run_id);
    expect(run.status).toBe("failed");
    expect(run.error).toMatch(/^Step 3 \(calculator\) failed: /);
    expect(run.execution_log.map((e) => e.status)).toEqual(["succeeded", "succeeded", "failed"]);
    const events = await expectUndone(run, [a, b], [2, 1]);
    // Each compensation deleted the todo its step added.
    const ids = run.execution_log.slice(0, 2).map((e) => (e.output as { todo: { id: string } }).todo.id);
    expect(run.compensation?.steps).toEqual([
      {
        step_number: 2,
        tool_name: "todo_store",
        tool_input: { action: "delete", todo_id: ids[1], missing_ok: true },
        status: "succeeded",
        output: { deleted: true, todo_id: ids[1] },
        error: null,
        attempts: 1,
      },
      {
        step_number: 1,
        tool_name: "todo_store",
        tool_input: { action: "delete", todo_id: ids[0], missing_ok: true },
        status: "succeeded",
        output: { deleted: true, todo_id: ids[0] },
        error: null,
        attempts: 1,
      },
    ]);
    expect(eventsLike(events, "compensation.").filter((e) => !e.startsWith("compensation.step_dispatched"))).toEqual([
      "compensation.started#",
      "compensation.step_started#2",
      "compensation.step_succeeded#2",
      "compensation.step_started#1",
      "compensation.step_succeeded#1",
      "compensation.completed#",
    ]);
    // The terminal event comes after the compensation, and nothing after it.
    expect(events.at(-1)?.type).toBe("run.failed");
    expect(events.at(-2)?.type).toBe("compensation.completed");
    // No step was dispatched once the compensation started.
    const started = events.findIndex((e) => e.type === "compensation.started");
    expect(events.slice(started).some((e) => e.type === "step.dispatched")).toBe(false);
  });

  it("queues compensation messages with task compensate and idempotency per compensation", async () => {
    const seen: string[] = [];
    setFaultInjector({
      onMessage(m) {
        if (isCompensation(m)) seen.push(taskKey(m));
        return undefined;
      },
    });
    const [a, b] = [unique("msg a"), unique("msg b")];
    const run = await waitForEnd((await createRun(saga(a, b))).run_id);
    await expectUndone(run, [a, b], [2, 1]);
    expect(seen.filter((k) => k.startsWith(run.run_id))).toEqual([
      `${run.run_id}:2:1:compensate`,
      `${run.run_id}:1:1:compensate`,
    ]);
  });

  it("leaves a run without compensation when nothing had succeeded", async () => {
    const text = unique("nothing");
    const run = await waitForEnd(
      (
        await createRun({
          prompt: "nothing to undo",
          options: { ...FAST, on_failure: "compensate" },
          plan: { steps: [failing(1, []), addTodo(2, text, { depends_on: [1] })] },
        })
      ).run_id,
    );
    expect(run).toMatchObject({ status: "failed", compensation: null });
    expect(run.execution_log.map((e) => e.status)).toEqual(["failed", "skipped"]);
    expect(await todoCount(text)).toBe(0);
  });

  it("records succeeded steps without a compensation as skipped and undoes the rest", async () => {
    const text = unique("skip");
    const run = await waitForEnd(
      (
        await createRun({
          prompt: "mixed saga",
          options: { ...FAST, on_failure: "compensate" },
          plan: {
            steps: [
              { step_number: 1, tool_name: "calculator", tool_input: { expression: "6 * 7" } },
              addTodo(2, text, { depends_on: [1] }),
              failing(3, [2]),
            ],
          },
        })
      ).run_id,
    );
    expect(run.status).toBe("failed");
    expect(run.compensation?.status).toBe("completed");
    expect(run.compensation?.steps.map((s) => [s.step_number, s.status])).toEqual([
      [2, "succeeded"],
      [1, "skipped"],
    ]);
    const events = await getEvents(run.run_id);
    expect(eventsLike(events, "compensation.step_skipped")).toEqual(["compensation.step_skipped#1"]);
    expect(await todoCount(text)).toBe(0);
  });

  it("runs a plan's own compensation, whose references name another step and the step itself", async () => {
    const [a, b] = [unique("explicit a"), unique("explicit b")];
    const run = await waitForEnd(
      (
        await createRun({
          prompt: "explicit compensations",
          options: { ...FAST, on_failure: "compensate" },
          plan: {
            steps: [
              { step_number: 1, tool_name: "calculator", tool_input: { expression: "6 * 7" } },
              addTodo(2, a, {
                // Undo by recording what was undone: a todo naming this step's todo and step 1's output.
                compensate: {
                  tool_name: "todo_store",
                  tool_input: { action: "add", text: `undone {{steps.2.output.todo.text}} after {{steps.1.output}}` },
                },
              }),
              addTodo(3, b, {
                compensate: {
                  tool_name: "todo_store",
                  tool_input: { action: "delete", todo_id: "{{steps.3.output.todo.id}}" },
                },
              }),
              failing(4, [1, 3]),
            ],
          },
        })
      ).run_id,
    );
    expect(run.status).toBe("failed");
    expect(run.compensation?.status).toBe("completed");
    expect(run.compensation?.steps.map((s) => [s.step_number, s.tool_name, s.status])).toEqual([
      [3, "todo_store", "succeeded"],
      [2, "todo_store", "succeeded"],
      [1, "calculator", "skipped"],
    ]);
    expect(run.compensation?.steps[1]?.tool_input).toEqual({ action: "add", text: `undone ${a} after 42` });
    expect(await todoCount(b)).toBe(0);
    // The plan's compensation replaced the tool's own: step 2's todo stays, the undo note exists once.
    expect(await todoCount(a)).toBe(1);
    expect(await todoCount(`undone ${a} after 42`)).toBe(1);
  });

  it("undoes a complete with reopen: the todo is open again", async () => {
    const text = unique("reopen");
    const added = await waitForEnd((await createRun({ prompt: "add", plan: { steps: [addTodo(1, text)] } })).run_id);
    const id = (added.result as { todo: { id: string } }).todo.id;
    const run = await waitForEnd(
      (
        await createRun({
          prompt: "complete then fail",
          options: { ...FAST, on_failure: "compensate" },
          plan: {
            steps: [
              { step_number: 1, tool_name: "todo_store", tool_input: { action: "complete", todo_id: id } },
              failing(2, [1]),
            ],
          },
        })
      ).run_id,
    );
    expect(run.compensation).toMatchObject({
      status: "completed",
      steps: [{ step_number: 1, tool_input: { action: "reopen", todo_id: id }, status: "succeeded" }],
    });
    expect(await todoCompleted(id)).toBe(false);
  });

  it("undoing a complete of a todo that was already completed leaves it completed, as it was before the run", async () => {
    const text = unique("already done");
    const added = await waitForEnd(
      (
        await createRun({
          prompt: "add and complete",
          plan: {
            steps: [
              addTodo(1, text),
              {
                step_number: 2,
                tool_name: "todo_store",
                tool_input: { action: "complete", todo_id: "{{steps.1.output.todo.id}}" },
              },
            ],
          },
        })
      ).run_id,
    );
    const id = (added.result as { todo: { id: string } }).todo.id;
    expect(await todoCompleted(id)).toBe(true);
    // This run's complete changes nothing; undoing it must not reopen a todo someone else completed.
    const run = await waitForEnd(
      (
        await createRun({
          prompt: "complete again then fail",
          options: { ...FAST, on_failure: "compensate" },
          plan: {
            steps: [
              { step_number: 1, tool_name: "todo_store", tool_input: { action: "complete", todo_id: id } },
              failing(2, [1]),
            ],
          },
        })
      ).run_id,
    );
    expect(run.status).toBe("failed");
    expect(await todoCompleted(id)).toBe(true);
  });

  it("refuses an invalid compensation in an explicit plan with 422", async () => {
    const res = await api("/api/v1/runs", {
      method: "POST",
      json: {
        prompt: "bad compensation",
        plan: {
          steps: [
            addTodo(1, unique("bad"), {
              compensate: { tool_name: "todo_store", tool_input: { action: "delete", todo_id: "{{steps.9.output}}" } },
            }),
            addTodo(2, unique("bad"), { compensate: { tool_name: "no_such_tool", tool_input: {} } }),
          ],
        },
      },
    });
    expect(res.status).toBe(422);
    const problem = (await res.json()) as Problem;
    expect(problem.errors?.map((e) => e.path).join(" ")).toMatch(/compensate/);
  });

  it("keeps undoing after a compensation fails for good, and leaves compensation.status failed in the Run and the events", async () => {
    const [a, b] = [unique("fails a"), unique("fails b")];
    const run = await waitForEnd(
      (
        await createRun({
          prompt: "a compensation that fails",
          options: { ...FAST, on_failure: "compensate" },
          plan: {
            steps: [
              addTodo(1, a),
              // Its compensation deletes a todo that does not exist: not retried, failed for good.
              addTodo(2, b, {
                compensate: { tool_name: "todo_store", tool_input: { action: "delete", todo_id: "no-such-todo" } },
              }),
              failing(3, [2]),
            ],
          },
        })
      ).run_id,
    );
    expect(run.status).toBe("failed");
    expect(run.compensation).toMatchObject({
      status: "failed",
      steps: [
        { step_number: 2, status: "failed", error: expect.stringContaining("no-such-todo"), attempts: 1 },
        { step_number: 1, status: "succeeded" },
      ],
    });
    // Best effort: step 1 was still undone; step 2's todo is left, and the Run says so.
    expect(await todoCount(a)).toBe(0);
    expect(await todoCount(b)).toBe(1);
    const events = await getEvents(run.run_id);
    expect(eventsLike(events, "compensation.step_failed")).toEqual(["compensation.step_failed#2"]);
    const failed = events.find((e) => e.type === "compensation.failed");
    expect(failed?.data).toMatchObject({ failed_steps: [2] });
    expect(events.at(-1)?.type).toBe("run.failed");
    expect(events.at(-2)?.type).toBe("compensation.failed");
    // The list shows it too.
    const res = await api(`/api/v1/runs?limit=100`);
    const summary = ((await res.json()) as RunSummary[]).find((r) => r.run_id === run.run_id);
    expect(summary?.compensation).toEqual({ status: "failed" });
  });

  it("logs a compensation that fails for good at error level, with the run and the step it undoes", async () => {
    pinLogLevel("info");
    const spy = vi.spyOn(console, "log");
    try {
      const run = await waitForEnd(
        (
          await createRun({
            prompt: "a logged compensation failure",
            options: { ...FAST, on_failure: "compensate" },
            plan: {
              steps: [
                addTodo(1, unique("logged"), {
                  compensate: { tool_name: "todo_store", tool_input: { action: "delete", todo_id: "no-such-todo" } },
                }),
                failing(2, [1]),
              ],
            },
          })
        ).run_id,
      );
      expect(run.compensation?.status).toBe("failed");
      const lines = spy.mock.calls
        .flatMap((args) => {
          const text = String(args[0]);
          return text.startsWith("{") ? [JSON.parse(text) as Record<string, unknown>] : [];
        })
        .filter((l) => l.run_id === run.run_id);
      expect(lines.find((l) => l.msg === "compensation.step_failed")).toMatchObject({
        level: "error",
        step_number: 1,
        tenant: "dev",
      });
      expect(lines.find((l) => l.msg === "compensation.failed")).toMatchObject({ level: "error" });
    } finally {
      spy.mockRestore();
      pinLogLevel(null);
    }
  });

  it("retries a compensation after a transient failure and still deletes the todo once", async () => {
    const [a, b] = [unique("transient a"), unique("transient b")];
    const created = await createRun(saga(a, b));
    setFaultInjector(
      firstDelivery((m) => m.run_id === created.run_id && isCompensation(m) && m.attempt === 1, { failTool: true }),
    );
    const run = await waitForEnd(created.run_id);
    await expectUndone(run, [a, b], [2, 1]);
    expect(run.compensation?.steps.map((s) => s.attempts)).toEqual([2, 2]);
    const events = await getEvents(run.run_id);
    expect(eventsLike(events, "compensation.step_retry_scheduled")).toEqual([
      "compensation.step_retry_scheduled#2",
      "compensation.step_retry_scheduled#1",
    ]);
  });

  it("cancel with {compensate: true} undoes what succeeded, cancels the running step, and ends the run cancelled", async () => {
    const text = unique("cancel");
    const created = await createRun({
      prompt: "cancel and undo",
      // The sleep holds its consumer's batch (the local queue delivers one batch at a time), so the
      // compensation's message waits for it: the timeouts leave room for that.
      options: { ...FAST, step_timeout_ms: 6000 },
      plan: {
        steps: [addTodo(1, text), { step_number: 2, tool_name: "sleep", tool_input: { ms: 2000 }, depends_on: [1] }],
      },
    });
    await eventually(
      "step 2 running",
      () => getRun(created.run_id),
      (r) => r.execution_log[1]?.status === "running",
    );
    expect(await todoCount(text)).toBe(1);
    const res = await cancel(created.run_id, { compensate: true, reason: "changed my mind" });
    expect(res.status).toBe(200);
    const answered = (await res.json()) as Run;
    expect(["running", "cancelled"]).toContain(answered.status);
    expect(answered.compensation).not.toBeNull();
    const run = await waitForEnd(created.run_id);
    expect(run.status).toBe("cancelled");
    expect(run.error).toBe("changed my mind");
    expect(run.execution_log.map((e) => e.status)).toEqual(["succeeded", "cancelled"]);
    const events = await expectUndone(run, [text], [1]);
    expect(events.at(-1)?.type).toBe("run.cancelled");
    expect(events.at(-2)?.type).toBe("compensation.completed");
  });

  it("cancel with {compensate: true} of a run waiting for an approval undoes its todo", async () => {
    const text = unique("cancel approval");
    const created = await createRun({
      prompt: "approval then cancel",
      options: FAST,
      plan: {
        steps: [
          addTodo(1, text),
          { step_number: 2, tool_name: "approval", tool_input: { message: "ship it?" }, depends_on: [1] },
        ],
      },
    });
    await eventually(
      "the approval to wait",
      () => getRun(created.run_id),
      (r) => r.waiting_for.length === 1,
    );
    expect((await cancel(created.run_id, { compensate: true })).status).toBe(200);
    const run = await waitForEnd(created.run_id);
    expect(run).toMatchObject({ status: "cancelled", waiting_for: [] });
    expect(run.execution_log[1]?.status).toBe("cancelled");
    await expectUndone(run, [text], [1]);
    const inbox = (await (await api("/api/v1/approvals?limit=100")).json()) as { run_id: string }[];
    expect(inbox.some((a) => a.run_id === run.run_id)).toBe(false);
  });

  it("cancel without a body cancels without compensating", async () => {
    const text = unique("plain cancel");
    const created = await createRun({
      prompt: "plain cancel",
      options: FAST,
      plan: {
        steps: [
          addTodo(1, text),
          { step_number: 2, tool_name: "approval", tool_input: { message: "ok?" }, depends_on: [1] },
        ],
      },
    });
    await eventually(
      "the approval to wait",
      () => getRun(created.run_id),
      (r) => r.waiting_for.length === 1,
    );
    expect((await cancel(created.run_id)).status).toBe(200);
    const run = await waitForEnd(created.run_id);
    expect(run).toMatchObject({ status: "cancelled", compensation: null });
    expect(await todoCount(text)).toBe(1);
  });

  it("refuses a malformed cancel body with 422", async () => {
    const created = await createRun({
      prompt: "bad cancel body",
      plan: { steps: [{ step_number: 1, tool_name: "approval", tool_input: { message: "ok?" } }] },
    });
    const res = await cancel(created.run_id, { compensate: "yes" });
    expect(res.status).toBe(422);
    expect((await cancel(created.run_id, { compensate: true, extra: 1 })).status).toBe(422);
    expect((await getRun(created.run_id)).status).toBe("running");
    expect((await cancel(created.run_id)).status).toBe(200);
  });

  it("answers 409 to a cancel while compensating and to a cancel of a finished run, changing nothing", async () => {
    const [a, b] = [unique("409 a"), unique("409 b")];
    const created = await createRun(saga(a, b, { step_timeout_ms: 5000 }));
    // Hold the first compensation's report until the cancels were answered: the run stays compensating.
    const hold = held();
    setFaultInjector(
      firstDelivery((m) => m.run_id === created.run_id && isCompensation(m), { holdReport: hold.until }),
    );
    await eventually(
      "the compensation to start",
      () => getRun(created.run_id),
      (r) => r.compensation?.status === "running",
    );
    for (const body of [{ compensate: true }, undefined]) {
      const res = await cancel(created.run_id, body);
      expect(res.status).toBe(409);
      expect(res.headers.get("Content-Type")).toMatch(/application\/problem\+json/);
      expect(((await res.json()) as Problem).detail).toMatch(/compensating/);
    }
    hold.release();
    const run = await waitForEnd(created.run_id);
    expect(run.status).toBe("failed");
    await expectUndone(run, [a, b], [2, 1]);
    const before = await getEvents(run.run_id);
    const finished = await cancel(run.run_id, { compensate: true });
    expect(finished.status).toBe(409);
    expect(await getEvents(run.run_id)).toEqual(before);
  });

  it("undoes a DAG's steps newest completion first, every dependant before what it depends on", async () => {
    // 1 → (2, 3) → 4 → 5 fails. 2 sleeps longer than 3, so 3 completes first. Each step's
    // compensation is a sleep (queued whatever the placement) or a calculation (inline by default).
    const undo = (n: number): StepInput["compensate"] =>
      n % 2 === 0
        ? { tool_name: "sleep", tool_input: { ms: n } }
        : { tool_name: "calculator", tool_input: { expression: `-${n}` } };
    const sleep = (n: number, ms: number, depends_on: number[]): StepInput => ({
      step_number: n,
      tool_name: "sleep",
      tool_input: { ms },
      depends_on,
      compensate: undo(n),
    });
    const run = await waitForEnd(
      (
        await createRun({
          prompt: "dag saga",
          options: { ...FAST, on_failure: "compensate" },
          plan: {
            steps: [sleep(1, 1, []), sleep(2, 200, [1]), sleep(3, 1, [1]), sleep(4, 1, [2, 3]), failing(5, [4])],
          },
        })
      ).run_id,
    );
    expect(run.status).toBe("failed");
    const events = await getEvents(run.run_id);
    const completed = events.filter((e) => e.type === "step.succeeded").map((e) => e.step_number);
    const undone = events.filter((e) => e.type === "compensation.step_succeeded").map((e) => e.step_number);
    expect(undone).toEqual([...completed].reverse());
    expect(undone).toEqual([4, 2, 3, 1]);
    // One at a time: each compensation starts after the previous one ended.
    const order = events
      .filter((e) => e.type === "compensation.step_started" || e.type === "compensation.step_succeeded")
      .map((e) => `${e.type === "compensation.step_started" ? "start" : "end"}${e.step_number}`);
    expect(order).toEqual(["start4", "end4", "start2", "end2", "start3", "end3", "start1", "end1"]);
    expect(run.compensation?.steps.map((s) => s.step_number)).toEqual([4, 2, 3, 1]);
  });

  it("shows live watchers every compensation event before the terminal event, then closes", async () => {
    const [a, b] = [unique("live a"), unique("live b")];
    const created = await createRun(saga(a, b));
    setFaultInjector(firstDelivery((m) => m.run_id === created.run_id && isCompensation(m), { delayReportMs: 300 }));
    const { session } = await watch(created.run_id, { after: 0, timeoutMs: 20_000 });
    expect(await session.closed).toBe(1000);
    const live = eventsOf(session.messages);
    const stored = await getEvents(created.run_id);
    expect(live.map((e) => e.seq)).toEqual(stored.map((e) => e.seq));
    expect(live.map((e) => e.seq)).toEqual(live.map((_, i) => i + 1));
    const terminal = live.findIndex((e) => e.type === "run.failed");
    expect(terminal).toBe(live.length - 1);
    expect(live.findIndex((e) => e.type === "compensation.completed")).toBe(terminal - 1);
    expect(live.filter((e) => e.type.startsWith("compensation.")).length).toBeGreaterThanOrEqual(6);
  });

  it("keeps the compensation in the D1 archive: served the same after the run leaves its Durable Object", async () => {
    const [a, b] = [unique("archive a"), unique("archive b")];
    const live = await waitForEnd((await createRun(saga(a, b))).run_id);
    await expectUndone(live, [a, b], [2, 1]);
    const events = await getEvents(live.run_id);
    await purged(live.run_id);
    const fromD1 = await getRun(live.run_id);
    expect(fromD1.compensation).toEqual(live.compensation);
    expect(fromD1).toEqual(live);
    expect(await getEvents(live.run_id)).toEqual(events);
    const res = await api(`/api/v1/runs?limit=100`);
    const summary = ((await res.json()) as RunSummary[]).find((r) => r.run_id === live.run_id);
    expect(summary).toMatchObject({ status: "failed", compensation: { status: "completed" } });
    // A finished, archived run cannot be cancelled.
    expect((await cancel(live.run_id, { compensate: true })).status).toBe(409);
    expect(await todoCount(a)).toBe(0);
  });
});

describe("compensation under crashes and duplicate delivery", () => {
  it("deletes each todo once when every compensation message is delivered twice", async () => {
    const [a, b] = [unique("dup a"), unique("dup b")];
    const created = await createRun(saga(a, b));
    setFaultInjector(firstDelivery((m) => m.run_id === created.run_id && isCompensation(m), { duplicate: true }));
    const run = await waitForEnd(created.run_id);
    expect(run.status).toBe("failed");
    await expectUndone(run, [a, b], [2, 1]);
    expect(run.compensation?.steps.map((s) => s.attempts)).toEqual([1, 1]);
    // Both duplicates were seen and ignored (the last may arrive just after the run ended).
    const ignored = await eventually(
      "both duplicates to be ignored",
      () => getEvents(run.run_id),
      (events) => events.filter((e) => e.type === "step.ignored" && e.data?.task === "compensate").length === 2,
    );
    expect(
      ignored
        .filter((e) => e.type === "step.ignored")
        .map((e) => e.step_number)
        .sort(),
    ).toEqual([1, 2]);
    expect(eventsLike(ignored, "compensation.step_failed")).toEqual([]);
  });

  it("survives the coordinator's eviction in the middle of compensating: each compensation runs once", async () => {
    const [a, b] = [unique("evict a"), unique("evict b")];
    const created = await createRun(saga(a, b));
    // The first compensation's report is held until the coordinator has been evicted.
    const hold = held();
    setFaultInjector(
      firstDelivery((m) => m.run_id === created.run_id && isCompensation(m), { holdReport: hold.until }),
    );
    await eventually(
      "a compensation to start",
      () => getEvents(created.run_id),
      (events) => events.some((e) => e.type === "compensation.step_started"),
    );
    expect((await getRun(created.run_id)).compensation?.status).toBe("running");
    await evictDurableObject(coordinator("dev", created.run_id));
    hold.release();
    const run = await waitForEnd(created.run_id);
    expect(run.status).toBe("failed");
    await expectUndone(run, [a, b], [2, 1]);
    expect(run.compensation?.steps.map((s) => s.attempts)).toEqual([1, 1]);
  });

  it("recovers when the consumer crashes before running a compensation", async () => {
    const [a, b] = [unique("crash before a"), unique("crash before b")];
    const created = await createRun(saga(a, b));
    setFaultInjector(
      firstDelivery((m) => m.run_id === created.run_id && isCompensation(m) && m.step_number === 2 && m.attempt === 1, {
        throwBeforeTool: true,
      }),
    );
    const run = await waitForEnd(created.run_id, 20_000);
    expect(run.status).toBe("failed");
    await expectUndone(run, [a, b], [2, 1]);
    expect(run.compensation?.steps.map((s) => s.attempts)).toEqual([2, 1]);
  });

  it("does not delete twice, or fail, when the consumer crashes after a compensation's delete", async () => {
    const [a, b] = [unique("crash after a"), unique("crash after b")];
    const created = await createRun(saga(a, b));
    setFaultInjector(
      firstDelivery((m) => m.run_id === created.run_id && isCompensation(m) && m.step_number === 2 && m.attempt === 1, {
        throwAfterTool: true,
      }),
    );
    const run = await waitForEnd(created.run_id, 20_000);
    expect(run.status).toBe("failed");
    const events = await expectUndone(run, [a, b], [2, 1]);
    // The second attempt found the delete already done (idempotency key run:2:compensate).
    expect(run.compensation?.steps[0]).toMatchObject({ attempts: 2, output: { deleted: true } });
    expect(eventsLike(events, "compensation.step_failed")).toEqual([]);
  });

  it("recovers a lost compensation message with the watchdog", async () => {
    const [a, b] = [unique("lost a"), unique("lost b")];
    const created = await createRun(saga(a, b));
    setFaultInjector(
      firstDelivery((m) => m.run_id === created.run_id && isCompensation(m) && m.step_number === 1 && m.attempt === 1, {
        drop: true,
      }),
    );
    const run = await waitForEnd(created.run_id, 20_000);
    expect(run.status).toBe("failed");
    const events = await expectUndone(run, [a, b], [2, 1]);
    const timedOut = events.find((e) => e.type === "compensation.step_retry_scheduled" && e.step_number === 1);
    expect(timedOut?.data).toMatchObject({ reason: "timeout" });
  });

  it("survives eviction while a compensation waits for its retry", async () => {
    const [a, b] = [unique("evict retry a"), unique("evict retry b")];
    const created = await createRun(saga(a, b));
    setFaultInjector(
      firstDelivery((m) => m.run_id === created.run_id && isCompensation(m) && m.step_number === 2 && m.attempt === 1, {
        failTool: true,
      }),
    );
    await eventually(
      "the compensation's retry to be scheduled",
      () => getEvents(created.run_id),
      (events) => events.some((e) => e.type === "compensation.step_retry_scheduled"),
    );
    await evictDurableObject(coordinator("dev", created.run_id));
    const run = await waitForEnd(created.run_id, 20_000);
    await expectUndone(run, [a, b], [2, 1]);
    expect(run.compensation?.steps.map((s) => s.attempts)).toEqual([2, 1]);
  });
});

describe("compensation placement", () => {
  it("runs pure compensations where pure steps run (inline by default, queued otherwise)", async () => {
    const queued: string[] = [];
    setFaultInjector({
      onMessage(m) {
        if (isCompensation(m)) queued.push(taskKey(m));
        return undefined;
      },
    });
    const run = await waitForEnd(
      (
        await createRun({
          prompt: "pure compensation",
          options: { ...FAST, on_failure: "compensate" },
          plan: {
            steps: [
              {
                step_number: 1,
                tool_name: "sleep",
                tool_input: { ms: 1 },
                compensate: { tool_name: "calculator", tool_input: { expression: "2 + 2" } },
              },
              failing(2, [1]),
            ],
          },
        })
      ).run_id,
    );
    expect(run.compensation).toMatchObject({ status: "completed", steps: [{ step_number: 1, output: 4 }] });
    const inline = env.INLINE_PURE_TOOLS !== "false";
    expect(queued.filter((k) => k.startsWith(run.run_id))).toEqual(inline ? [] : [`${run.run_id}:1:1:compensate`]);
  });
});

describe("compensations in the metrics", () => {
  it("GET /metrics counts the tenant's compensations by status, a failed one included", async () => {
    const key = await apiKeyFor(`t-comp-metrics-${crypto.randomUUID().slice(0, 8)}`);
    const since = new Date(Date.now() - 1000).toISOString();
    const start = async (undo: Record<string, unknown> | undefined) => {
      const res = await api("/api/v1/runs", {
        method: "POST",
        key,
        json: {
          prompt: "metrics of a saga",
          options: { on_failure: "compensate" },
          plan: {
            steps: [
              {
                step_number: 1,
                tool_name: "todo_store",
                tool_input: { action: "add", text: `metrics ${crypto.randomUUID()}` },
                ...(undo ? { compensate: undo } : {}),
              },
              { step_number: 2, tool_name: "calculator", tool_input: { expression: "1/0" }, depends_on: [1] },
            ],
          },
        },
      });
      return ((await res.json()) as Run).run_id;
    };
    const runs = [
      await start(undefined),
      await start({ tool_name: "todo_store", tool_input: { action: "delete", todo_id: "gone" } }),
    ];
    for (const id of runs) await waitForRun(id, 20_000, 25, key);
    // The metrics read the D1 archive: wait until both runs are in it.
    const deadline = Date.now() + 20_000;
    let metrics: { compensations: { total: number; by_status: Record<string, number> } };
    do {
      metrics = (await (await api(`/api/v1/metrics?since=${since}`, { key })).json()) as typeof metrics;
      if (metrics.compensations.total < 2) await new Promise((r) => setTimeout(r, 100));
    } while (metrics.compensations.total < 2 && Date.now() < deadline);
    expect(metrics.compensations).toEqual({ total: 2, by_status: { completed: 1, failed: 1 } });
  });
});

describe("undoing what is already undone", () => {
  it("undoing an add whose todo a later step deleted counts as done: the compensation succeeds", async () => {
    const text = `deleted later ${crypto.randomUUID()}`;
    const res = await api("/api/v1/runs", {
      method: "POST",
      json: {
        prompt: "add, delete, fail",
        options: { on_failure: "compensate" },
        plan: {
          steps: [
            { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } },
            {
              step_number: 2,
              tool_name: "todo_store",
              tool_input: { action: "delete", todo_id: "{{steps.1.output.todo.id}}" },
            },
            { step_number: 3, tool_name: "calculator", tool_input: { expression: "1/0" }, depends_on: [2] },
          ],
        },
      },
    });
    const run = await waitForRun(((await res.json()) as Run).run_id, 20_000);
    expect(run.status).toBe("failed");
    expect(run.compensation?.status).toBe("completed");
    expect(run.compensation?.steps.find((s) => s.step_number === 1)).toMatchObject({
      status: "succeeded",
      output: { deleted: false },
    });
    expect(await todoCount(text)).toBe(0);
  });
});
