import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import type { Run, RunEvent } from "../../src/contracts/run";
import type { StepMessage } from "../../src/contracts/tool";
import { type FaultInjector, type MessageFault, setFaultInjector } from "../../src/faults";
import type { RunCoordinator } from "../../src/run/coordinator";
import { api, createRun, getEvents, waitForRun } from "../helpers/api";
import { messageKey, terminalEventsPerStep, todoCount } from "../helpers/faults";
import { eventsOf, watch } from "../helpers/live";
import { coordinator, eventually } from "../helpers/recovery";

afterEach(() => setFaultInjector(null));

/** Injects `fault` into the first delivery of each matching (step, attempt) message, once. */
function once(match: (m: StepMessage) => boolean, fault: MessageFault): FaultInjector {
  const seen = new Set<string>();
  return {
    onMessage(m) {
      if (!match(m) || seen.has(messageKey(m))) return undefined;
      seen.add(messageKey(m));
      return fault;
    },
  };
}

const FAST = { step_timeout_ms: 500, max_attempts: 4 };

/**
 * A todo add (the side effect to count) and a 1 ms sleep — both go through the queue whatever
 * the placement, so the faults below hit them in the default and in the all-queue project alike —
 * and a text step that needs both (inline by default).
 */
function todoPlan(text: string) {
  return {
    prompt: `fault test ${text}`,
    options: FAST,
    plan: {
      steps: [
        { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } },
        { step_number: 2, tool_name: "sleep", tool_input: { ms: 1 } },
        {
          step_number: 3,
          tool_name: "text",
          tool_input: { operation: "uppercase", text: "{{steps.1.output.todo.text}} / {{steps.2.output.slept_ms}}" },
        },
      ],
    },
  };
}

/** The steps of `todoPlan` that get queue messages here (pure tools run inline unless the project says not). */
const QUEUED = env.INLINE_PURE_TOOLS === "false" ? [1, 2, 3] : [1, 2];

async function expectCleanFinish(run: Run, text: string): Promise<RunEvent[]> {
  expect(run.status).toBe("completed");
  expect(run.result).toBe(`${text.toUpperCase()} / 1`);
  const events = await getEvents(run.run_id);
  for (const [step, outcomes] of terminalEventsPerStep(events)) {
    expect(outcomes, `step ${step} outcomes`).toEqual(["step.succeeded"]);
  }
  expect(terminalEventsPerStep(events).size).toBe(3);
  expect(await todoCount(text)).toBe(1);
  return events;
}

const unique = (label: string) => `${label} ${crypto.randomUUID().slice(0, 8)}`;

describe("fault injection through the real queue and coordinator", () => {
  it("survives duplicate delivery of every message", async () => {
    setFaultInjector(once(() => true, { duplicate: true }));
    const text = unique("dup");
    const run = await waitForRun((await createRun(todoPlan(text))).run_id);
    await expectCleanFinish(run, text);
    // The last step's duplicate may be handled just after the run completed: wait for every one.
    const deadline = Date.now() + 5000;
    let ignored: RunEvent[] = [];
    while (ignored.length < QUEUED.length && Date.now() < deadline) {
      ignored = (await getEvents(run.run_id)).filter((e) => e.type === "step.ignored");
      if (ignored.length < QUEUED.length) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ignored.map((e) => e.step_number).sort()).toEqual(QUEUED);
    expect(ignored.every((e) => e.data?.ignored === true)).toBe(true);
    expect(run.execution_log.map((e) => e.attempts)).toEqual([1, 1, 1]);
  });

  it("recovers when the consumer crashes before running the tool", async () => {
    setFaultInjector(once((m) => m.step_number === 1 && m.attempt === 1, { throwBeforeTool: true }));
    const text = unique("crash-before");
    const run = await waitForRun((await createRun(todoPlan(text))).run_id);
    const events = await expectCleanFinish(run, text);
    expect(run.execution_log[0]?.attempts).toBe(2);
    expect(events.find((e) => e.type === "step.retry_scheduled")?.data?.reason).toBe("timeout");
  });

  it("does not repeat the side effect when the consumer crashes after the tool ran", async () => {
    setFaultInjector(once((m) => m.step_number === 1 && m.attempt === 1, { throwAfterTool: true }));
    const text = unique("crash-after");
    const run = await waitForRun((await createRun(todoPlan(text))).run_id);
    await expectCleanFinish(run, text);
    expect(run.execution_log[0]?.attempts).toBe(2);
  });

  it("recovers a lost message with the watchdog", async () => {
    setFaultInjector(once((m) => m.step_number === 2 && m.attempt === 1, { drop: true }));
    const text = unique("lost");
    const run = await waitForRun((await createRun(todoPlan(text))).run_id);
    const events = await expectCleanFinish(run, text);
    expect(run.execution_log[1]?.attempts).toBe(2);
    const timedOut = events.find((e) => e.type === "step.retry_scheduled" && e.step_number === 2);
    expect(timedOut?.data).toMatchObject({ reason: "timeout", error: "Step was not picked up before its deadline" });
  });

  it("times out a tool that hangs past its timeout, then retries it", async () => {
    setFaultInjector(once((m) => m.step_number === 2 && m.attempt === 1, { hangMs: 3000 }));
    const text = unique("hang");
    const run = await waitForRun((await createRun(todoPlan(text))).run_id);
    const events = await expectCleanFinish(run, text);
    const retry = events.find((e) => e.type === "step.retry_scheduled" && e.step_number === 2);
    expect(retry?.data).toMatchObject({ reason: "timeout", error: "Step timed out" });
    expect(run.execution_log[1]?.attempts).toBe(2);
  });

  it("finishes when the coordinator is evicted between dispatch and result", async () => {
    setFaultInjector(once((m) => m.step_number === 1, { delayReportMs: 300 }));
    const text = unique("evict");
    const created = await createRun(todoPlan(text));
    await evictDurableObject(env.RUNS.get(env.RUNS.idFromName(`dev:${created.run_id}`)));
    const run = await waitForRun(created.run_id);
    await expectCleanFinish(run, text);
    expect(run.execution_log.map((e) => e.attempts)).toEqual([1, 1, 1]);
  });

  it("retries a failed queue send from the outbox", async () => {
    let failures = 2;
    setFaultInjector({
      beforeEnqueue() {
        if (failures-- > 0) throw new Error("injected: queue unavailable");
      },
    });
    const text = unique("outbox");
    const created = await createRun(todoPlan(text));
    expect(created.status).toBe("running");
    const run = await waitForRun(created.run_id);
    await expectCleanFinish(run, text);
    expect(failures).toBeLessThan(0);
    // The send was retried, not the attempts: every step ran once.
    expect(run.execution_log.map((e) => e.attempts)).toEqual([1, 1, 1]);
  });

  it("deletes a side effect's outbox row with the run's next write: the outbox holds only the last commit's", async () => {
    const steps = [1, 2, 3, 4, 5, 6].map((n) => ({
      step_number: n,
      tool_name: "sleep",
      tool_input: { ms: 1 },
      ...(n > 1 ? { depends_on: [n - 1] } : {}),
    }));
    const created = await createRun({ prompt: "a chain through the queue", plan: { steps } });
    const run = await waitForRun(created.run_id);
    expect(run.status).toBe("completed");
    // Twelve commits each left side effects (six sends, the gate's updates, the last of which
    // carries the run's archive); every one went out, and only the rows of the commit that
    // finished the run are still there: its gate update (no archive sync of its own).
    const rows = await runInDurableObject(coordinator("dev", created.run_id), (_, state) =>
      state.storage.sql
        .exec<{ kind: string }>("SELECT kind FROM outbox")
        .toArray()
        .map((r) => r.kind),
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.filter((k) => k === "enqueue")).toEqual([]);
    expect(rows.length).toBeLessThanOrEqual(2);
    expect(rows).toEqual(["gate"]);
  });

  // Pure steps reach the queue only when the project sends every step there.
  it.runIf(env.INLINE_PURE_TOOLS === "false")(
    "runs a pure step on the grant its message carries: started and finished in one commit, a duplicate ignored",
    async () => {
      // Each delivery's report waits a little: were the start a commit of its own, it would be
      // recorded before the wait and the result after it.
      setFaultInjector({
        onMessage: (m) => (m.step_number === 1 ? { delayReportMs: 80, duplicate: true } : undefined),
      });
      const created = await createRun({
        prompt: "a pure step through the queue",
        plan: { steps: [{ step_number: 1, tool_name: "calculator", tool_input: { expression: "6*7" } }] },
      });
      const run = await waitForRun(created.run_id);
      expect(run.status).toBe("completed");
      expect(run.result).toBe(42);
      const events = (await getEvents(created.run_id)).filter((e) => e.step_number === 1);
      const started = events.filter((e) => e.type === "step.started");
      const succeeded = events.filter((e) => e.type === "step.succeeded");
      expect([started.length, succeeded.length]).toEqual([1, 1]);
      const [s, done] = [started[0] as RunEvent, succeeded[0] as RunEvent];
      expect(done.seq).toBe(s.seq + 1);
      expect(done.at).toBe(s.at);
      expect(s.data?.input).toEqual({ expression: "6*7" });
      // The duplicate ran too (it changes nothing) and its report was recorded as ignored.
      const ignored = await eventually(
        "the duplicate's report",
        async () => (await getEvents(created.run_id)).filter((e) => e.type === "step.ignored"),
        (found) => found.length > 0,
      );
      expect(ignored.map((e) => e.data?.reason)).toEqual(["run completed"]);
    },
  );

  it("starts the steps of one run that arrive in one batch in one commit, and reports them together", async () => {
    const created = await createRun({
      prompt: "three sleeps side by side",
      plan: {
        steps: [1, 2, 3].map((n) => ({ step_number: n, tool_name: "sleep", tool_input: { ms: 20 } })),
      },
    });
    const run = await waitForRun(created.run_id);
    expect(run.status).toBe("completed");
    // The log is one row per commit: which commit wrote each step's start and end.
    const commits = await runInDurableObject(coordinator("dev", created.run_id), (_, state) =>
      state.storage.sql
        .exec<{ events: string }>("SELECT events FROM log ORDER BY first_seq")
        .toArray()
        .map((r) => (JSON.parse(r.events) as { type: string; step_number?: number }[]).map((e) => e.type)),
    );
    const started = commits.filter((c) => c.includes("step.started"));
    const ended = commits.filter((c) => c.includes("step.succeeded"));
    // One message each, sent together: one start commit; the ends come in at most two (the
    // first report may go alone, the others gather while it is under way) — never one per step.
    expect(started).toHaveLength(1);
    expect(started[0]?.filter((t) => t === "step.started")).toHaveLength(3);
    expect(ended.length).toBeLessThanOrEqual(2);
    expect(ended.flat().filter((t) => t === "step.succeeded")).toHaveLength(3);
  });

  it("runs a side-effect-free step (sleep) on its message's grant while the coordinator records its start", async () => {
    // The start is asked for only once the tool has run: a consumer that waited for the start
    // before running the tool would wait forever here.
    let toolRan = () => {};
    const ran = new Promise<void>((r) => {
      toolRan = r;
    });
    setFaultInjector(once((m) => m.step_number === 1, { holdStart: ran, afterTool: toolRan }));
    const created = await createRun({
      prompt: "a sleep through the queue",
      plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 5 } }] },
    });
    const run = await waitForRun(created.run_id);
    expect(run.status).toBe("completed");
    expect(run.execution_log[0]).toMatchObject({ status: "succeeded", attempts: 1, output: { slept_ms: 5 } });
    const types = (await getEvents(created.run_id)).filter((e) => e.step_number === 1).map((e) => e.type);
    expect(types).toEqual(["step.dispatched", "step.started", "step.succeeded"]);
  });

  it("stops a side-effect-free step whose start is refused while it runs, and reports nothing", async () => {
    // A 30 s sleep whose start is held until the run is cancelled: the refused start must stop it.
    let cancelled = () => {};
    const afterCancel = new Promise<void>((r) => {
      cancelled = r;
    });
    let stoppedAt: number | null = null;
    setFaultInjector(
      once((m) => m.step_number === 1, {
        holdStart: afterCancel,
        afterTool: () => {
          stoppedAt = Date.now();
        },
      }),
    );
    const created = await createRun({
      prompt: "a long sleep, cancelled",
      plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 30_000 } }] },
    });
    await eventually(
      "the sleep's dispatch",
      () => getEvents(created.run_id),
      (events) => events.some((e) => e.type === "step.dispatched"),
    );
    expect((await api(`/api/v1/runs/${created.run_id}/cancel`, { method: "POST" })).status).toBe(200);
    cancelled();
    // Well before its 30 s: the tool was aborted once the coordinator refused the start.
    await eventually(
      "the sleep to stop",
      async () => stoppedAt,
      (at) => at !== null,
      10_000,
    );
    const events = await eventually(
      "the refused start",
      () => getEvents(created.run_id),
      (found) => found.some((e) => e.type === "step.ignored"),
    );
    expect(events.filter((e) => e.type === "step.ignored").map((e) => e.data?.reason)).toEqual(["run cancelled"]);
    expect(events.some((e) => e.type === "step.started" || e.type === "step.succeeded")).toBe(false);
  });

  it("keeps an alarm already set earlier instead of moving it at every step, and never later than a deadline", async () => {
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    setFaultInjector(once((m) => m.step_number === 2, { holdReport: held }));
    const created = await createRun({
      prompt: "two sleeps in a row",
      plan: {
        steps: [
          { step_number: 1, tool_name: "sleep", tool_input: { ms: 1 } },
          { step_number: 2, tool_name: "sleep", tool_input: { ms: 1 }, depends_on: [1] },
        ],
      },
    });
    const events = await eventually(
      "step 2 to start",
      () => getEvents(created.run_id),
      (found) => found.some((e) => e.type === "step.started" && e.step_number === 2),
    );
    const deadline = (type: string, step: number) =>
      Date.parse(events.find((e) => e.type === type && e.step_number === step)?.data?.deadline_at as string);
    const alarm = await runInDurableObject(coordinator("dev", created.run_id), (_, state) => state.storage.getAlarm());
    // Step 1's start moved the earliest deadline earlier (the report grace is shorter than the
    // dispatch grace): the alarm followed. Each commit since moved it later: the alarm stayed.
    expect(deadline("step.started", 1)).toBeLessThan(deadline("step.dispatched", 1));
    expect(alarm).toBe(deadline("step.started", 1));
    expect(alarm).toBeLessThan(deadline("step.started", 2));
    release();
    expect((await waitForRun(created.run_id)).status).toBe("completed");
  });

  it("leaves nothing behind when the tenant's gate fails while a run finished in its POST is written", async () => {
    const failed: string[] = [];
    setFaultInjector({
      failGateOpen(runId) {
        failed.push(runId);
        return true;
      },
    });
    const res = await api("/api/v1/runs", {
      method: "POST",
      json: {
        prompt: "a pure plan",
        plan: { steps: [{ step_number: 1, tool_name: "calculator", tool_input: { expression: "2 + 2" } }] },
      },
    });
    expect(res.status).toBe(500);
    setFaultInjector(null);
    expect(failed).toHaveLength(1);
    const runId = failed[0] as string;
    // Its events were written while the gate was asked; with the gate's failure they are gone.
    const held = await runInDurableObject(coordinator("dev", runId), async (instance: RunCoordinator, state) => ({
      run: await instance.get(),
      tables: state.storage.sql
        .exec<{ name: string }>(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('log', 'outbox', 'meta')",
        )
        .toArray(),
      alarm: await state.storage.getAlarm(),
    }));
    expect(held).toEqual({ run: null, tables: [], alarm: null });
    expect((await api(`/api/v1/runs/${runId}`)).status).toBe(404);
    const listed = (await (await api("/api/v1/runs?limit=100")).json()) as { run_id: string }[];
    expect(listed.map((r) => r.run_id)).not.toContain(runId);
  });

  it("moves a finished run's earlier alarm to its purge at once, instead of waking at a deadline that is gone", async () => {
    const created = await createRun({
      prompt: "one sleep",
      plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 5 } }] },
    });
    const run = await waitForRun(created.run_id);
    expect(run.status).toBe("completed");
    const started = (await getEvents(created.run_id)).find((e) => e.type === "step.started");
    // While the step ran, the alarm was at its deadline, well over a second ahead.
    expect(Date.parse(started?.data?.deadline_at as string) - Date.parse(started?.at as string)).toBeGreaterThan(1000);
    const purgeAt = Date.parse(run.completed_at as string) + Number(env.RUN_RETENTION_MS);
    const alarm = await eventually(
      "the alarm at the purge",
      () => runInDurableObject(coordinator("dev", created.run_id), (_, state) => state.storage.getAlarm()),
      (a) => a === purgeAt,
      1000,
    );
    expect(alarm).toBe(purgeAt);
  });

  it("ignores a result that arrives after the run was cancelled, and tells watchers", async () => {
    // Step 2's report is held until the run has been cancelled: no race with the clock.
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    setFaultInjector(once((m) => m.step_number === 2, { holdReport: held }));
    const text = unique("cancel");
    const created = await createRun(todoPlan(text));
    const { session } = await watch(created.run_id, { after: 0 });
    let events = await getEvents(created.run_id);
    const deadline = Date.now() + 10_000;
    while (!events.some((e) => e.type === "step.started" && e.step_number === 2) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      events = await getEvents(created.run_id);
    }
    const res = await api(`/api/v1/runs/${created.run_id}/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(await session.closed).toBe(1000);
    expect(eventsOf(session.messages).at(-1)?.type).toBe("run.cancelled");
    release();
    while (!events.some((e) => e.type === "step.ignored" && e.step_number === 2) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      events = await getEvents(created.run_id);
    }
    const late = events.find((e) => e.type === "step.ignored" && e.step_number === 2);
    expect(late?.data).toMatchObject({ ignored: true, reason: "run cancelled", outcome: "succeeded" });
    const run = await waitForRun(created.run_id);
    expect(run.status).toBe("cancelled");
    expect(run.execution_log[1]?.status).toBe("cancelled");
    for (const outcomes of terminalEventsPerStep(events).values()) expect(outcomes).toHaveLength(1);
  });

  it("ignores the result of a stale attempt that arrives after a retry", async () => {
    setFaultInjector(once((m) => m.step_number === 1 && m.attempt === 1, { delayReportMs: 1500 }));
    const created = await createRun({
      prompt: "stale attempt",
      options: { step_timeout_ms: 300, max_attempts: 3 },
      plan: {
        steps: [
          { step_number: 1, tool_name: "sleep", tool_input: { ms: 1 } },
          { step_number: 2, tool_name: "sleep", tool_input: { ms: 2500 }, timeout_ms: 5000 },
        ],
      },
    });
    const run = await waitForRun(created.run_id);
    expect(run.status).toBe("completed");
    expect(run.execution_log[0]).toMatchObject({ attempts: 2, output: { slept_ms: 1 } });
    // Attempt 1 reports 1.5 s late, while step 2 still sleeps: after attempt 2 already succeeded.
    const events = await getEvents(created.run_id);
    const stale = events.find((e) => e.type === "step.ignored" && e.step_number === 1);
    expect(stale).toMatchObject({ attempt: 1, data: { ignored: true, reason: "stale attempt" } });
    expect(terminalEventsPerStep(events).get(1)).toEqual(["step.succeeded"]);
  });

  it("records a message the queue gave up on (max_retries, then crane-steps-dlq) on its run, and retries the step", {
    timeout: 60_000,
  }, async () => {
    // Every delivery of attempt 1 dies on arrival: the queue retries it max_retries (5) times, then
    // moves it to the dead-letter queue, whose consumer records the failure; attempt 2 succeeds.
    const deliveries: number[] = [];
    setFaultInjector({
      onMessage(m, delivery) {
        if (m.step_number !== 1 || m.attempt !== 1) return undefined;
        deliveries.push(delivery);
        return { throwBeforeStart: true };
      },
    });
    const created = await createRun({
      prompt: "dead letter",
      // Long enough that the watchdog does not time the attempt out before the queue gives up on it.
      options: { step_timeout_ms: 60_000 },
      plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 1 } }] },
    });
    const run = await waitForRun(created.run_id, 45_000, 100);
    expect(run).toMatchObject({ status: "completed", result: { slept_ms: 1 } });
    expect(deliveries).toEqual([1, 2, 3, 4, 5, 6]);
    const events = await getEvents(created.run_id);
    expect(events.find((e) => e.type === "step.dead_lettered")).toMatchObject({ step_number: 1, attempt: 1 });
    expect(events.find((e) => e.type === "step.retry_scheduled")?.data?.reason).toBe("dead_letter");
    expect(run.execution_log[0]?.attempts).toBe(2);
  });

  it("spaces retries by the run's backoff policy (recorded delay_ms, not wall clock)", async () => {
    setFaultInjector({
      onMessage: (m) => (m.attempt < 3 ? { hangMs: 1000 } : undefined),
    });
    const created = await createRun({
      prompt: "backoff",
      options: { step_timeout_ms: 200, max_attempts: 3, retry: { base_delay_ms: 100, factor: 3, max_delay_ms: 250 } },
      plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 1 } }] },
    });
    const run = await waitForRun(created.run_id);
    expect(run).toMatchObject({ status: "completed", result: { slept_ms: 1 } });
    const events = await getEvents(created.run_id);
    const retries = events.filter((e) => e.type === "step.retry_scheduled");
    expect(retries.map((e) => e.attempt)).toEqual([1, 2]);
    const ceilings = [100, 250]; // min(cap, base · factor^(attempt-1))
    retries.forEach((e, i) => {
      const delay = e.data?.delay_ms as number;
      expect(delay).toBeLessThan(ceilings[i] as number);
      // Times in event data are ISO-8601, like every timestamp of the API.
      expect(e.data?.retry_at).toBe(new Date(Date.parse(e.at) + delay).toISOString());
      // The next attempt is dispatched no earlier than the recorded retry time.
      const next = events.find((d) => d.type === "step.dispatched" && d.attempt === (e.attempt as number) + 1);
      expect(Date.parse(next?.at ?? "")).toBeGreaterThanOrEqual(Date.parse(e.data?.retry_at as string));
    });
  });
});
