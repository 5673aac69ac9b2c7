// crane/client's v1.1 methods against a real `wrangler dev`: approvals, signals, callbacks,
// the approval inbox, cancel with compensation, rerun, and watching waiting steps.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCrane } from "../../scripts/local-wrangler";
import { CraneClient, CraneError, type CreateRunBody, type Run, type RunEvent, type StepInput } from "../../src/client";
import { poll } from "../helpers/poll";

const crane = new LocalCrane();
let client: CraneClient;

beforeAll(async () => {
  crane.migrate();
  await crane.start();
  client = new CraneClient({ baseUrl: crane.url });
});
afterAll(() => crane.dispose());

async function rejection(promise: Promise<unknown>): Promise<CraneError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof CraneError) return err;
    throw err;
  }
  throw new Error("expected the call to fail");
}

/** Follows the run live until an event matches; the run must not end first. */
async function until(runId: string, what: string, match: (e: RunEvent) => boolean): Promise<RunEvent> {
  for await (const m of client.watch(runId, { after: 0 })) {
    if (m.type === "event" && match(m.event)) return m.event;
  }
  throw new Error(`run ${runId} ended before ${what}`);
}

/** Follows the run live to its end, then reads it. */
async function finished(runId: string): Promise<{ run: Run; events: RunEvent[] }> {
  const events: RunEvent[] = [];
  for await (const m of client.watch(runId, { after: 0 })) if (m.type === "event") events.push(m.event);
  return { run: await client.getRun(runId), events };
}

/**
 * The waiting object of a `step.waiting` event. API.md: it is the event's `data`; the server
 * may also nest it as `data.waiting` (next to the step's input), which the client and CLI read too.
 */
const waitingInfo = (e: RunEvent | undefined) => {
  const data = e?.data ?? {};
  return typeof data.waiting === "object" && data.waiting !== null ? data.waiting : data;
};

const waitingStep = (runId: string, step: number) =>
  until(runId, `step ${step} waits`, (e) => e.type === "step.waiting" && e.step_number === step);

const approvalPlan = (message: string): CreateRunBody => ({
  prompt: `approval: ${message}`,
  plan: {
    steps: [
      { step_number: 1, tool_name: "approval", tool_input: { message } },
      { step_number: 2, tool_name: "calculator", tool_input: { expression: "20+22" }, depends_on: [1] },
    ],
  },
});

/** Step 2 waits for the signal `name`; step 3 doubles its `n`. With `first`, step 2 waits for it first. */
const signalPlan = (name: string, first?: StepInput): CreateRunBody => ({
  prompt: `signal ${name}`,
  plan: {
    steps: [
      ...(first ? [first] : []),
      { step_number: 2, tool_name: "signal", tool_input: { name }, ...(first ? { depends_on: [1] } : {}) },
      { step_number: 3, tool_name: "calculator", tool_input: { expression: "{{steps.2.output.data.n}} * 2" } },
    ],
  },
});

describe("approvals", () => {
  it("a waiting approval shows in the run and the inbox; approve lets the run go on and records the decision", async () => {
    const message = `deploy ${crypto.randomUUID().slice(0, 8)}?`;
    const run = await client.createRun(approvalPlan(message));
    const waiting = await waitingStep(run.run_id, 1);
    expect(waitingInfo(waiting)).toMatchObject({ kind: "approval", message });

    const now = await client.getRun(run.run_id);
    expect(now.status).toBe("running");
    expect(now.waiting_for).toEqual([
      expect.objectContaining({ step_number: 1, kind: "approval", message, callback_url: expect.any(String) }),
    ]);
    expect(now.execution_log[0]).toMatchObject({ status: "waiting", success: null });

    const inbox = await client.approvals({ limit: 100 });
    expect(inbox.items).toContainEqual(
      expect.objectContaining({ run_id: run.run_id, step_number: 1, message, prompt: run.prompt }),
    );
    const all = [];
    for await (const a of client.allApprovals({ limit: 1 })) all.push(a);
    expect(all.map((a) => a.run_id)).toContain(run.run_id);

    const approved = await client.approve(run.run_id, 1, { comment: "ship it", data: { by: "e2e" } });
    expect(approved.run_id).toBe(run.run_id);
    const { run: done } = await finished(run.run_id);
    expect(done.status).toBe("completed");
    expect(done.result).toBe(42);
    expect(done.execution_log[0]?.output).toMatchObject({
      approved: true,
      comment: "ship it",
      data: { by: "e2e" },
      decided_by: "api",
    });
    expect((await rejection(client.approve(run.run_id, 1))).status).toBe(409);
  });

  it("reject fails the step without a retry, and the run with it", async () => {
    const run = await client.createRun(approvalPlan("drop the database?"));
    await waitingStep(run.run_id, 1);
    await client.reject(run.run_id, 1, { reason: "not today" });
    const { run: done } = await finished(run.run_id);
    expect(done.status).toBe("failed");
    expect(done.execution_log[0]).toMatchObject({ status: "failed", attempts: 1 });
    expect(done.execution_log[0]?.error).toMatch(/^Rejected: not today/);
  });

  it("deciding a step that is not a waiting approval is a 409; an unknown step or run a 404", async () => {
    const run = await client.createRun(approvalPlan("anything"));
    await waitingStep(run.run_id, 1);
    expect((await rejection(client.approve(run.run_id, 2))).status).toBe(409);
    expect((await rejection(client.reject(run.run_id, 99))).status).toBe(404);
    expect((await rejection(client.approve("no-such-run", 1))).status).toBe(404);
    await client.cancel(run.run_id);
  });
});

describe("signals and callbacks", () => {
  it("a signal completes the step waiting for it; an Idempotency-Key replays the answer", async () => {
    const run = await client.createRun(signalPlan("go"));
    await waitingStep(run.run_id, 2);
    const key = crypto.randomUUID();
    const answer = await client.signal(run.run_id, "go", { data: { n: 21 } }, { idempotencyKey: key });
    expect(answer).toEqual({ run_id: run.run_id, name: "go", delivered_to: 2, buffered: false });
    expect(await client.signal(run.run_id, "go", { data: { n: 21 } }, { idempotencyKey: key })).toEqual(answer);
    const { run: done, events } = await finished(run.run_id);
    expect(done.result).toBe(42);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "signal.received",
        data: expect.objectContaining({ name: "go", delivered_to: 2 }),
      }),
    );
    expect((await rejection(client.signal(run.run_id, "go"))).status).toBe(409);
  });

  it("a signal sent before its step waits is kept and consumed when it does", async () => {
    // Step 1 (an approval) holds step 2 back until the signal is in: no race with the clock.
    const run = await client.createRun(
      signalPlan("early", { step_number: 1, tool_name: "approval", tool_input: { message: "start?" } }),
    );
    const answer = await client.signal(run.run_id, "early", { data: { n: 5 } });
    expect(answer).toMatchObject({ delivered_to: null, buffered: true });
    await client.approve(run.run_id, 1);
    const { run: done } = await finished(run.run_id);
    expect(done.status).toBe("completed");
    expect(done.result).toBe(10);
  });

  it("a callback URL works without the API key, once; its token alone works too", async () => {
    const run = await client.createRun(approvalPlan("via the chat bot"));
    await waitingStep(run.run_id, 1);
    const url = (await client.getRun(run.run_id)).waiting_for[0]?.callback_url as string;
    // ≥ 128 random bits in the token, whatever its encoding.
    expect(url).toMatch(new RegExp(`^${crane.url}/api/v1/callbacks/[^/]{22,}$`));
    const keyless = new CraneClient({ baseUrl: crane.url, apiKey: "nobody" });
    expect(await keyless.callback(url, { approve: true, comment: "from the bot" })).toEqual({
      run_id: run.run_id,
      step_number: 1,
      accepted: true,
    });
    expect((await rejection(keyless.callback(url, { approve: true }))).status).toBe(404);
    const { run: done } = await finished(run.run_id);
    expect(done.execution_log[0]?.output).toMatchObject({ approved: true, decided_by: "callback" });

    const signalled = await client.createRun(signalPlan("hook"));
    await waitingStep(signalled.run_id, 2);
    const token = (await client.getRun(signalled.run_id)).waiting_for[0]?.callback_url?.split("/").at(-1) as string;
    expect(await keyless.callback(token, { data: { n: 4 } })).toMatchObject({ step_number: 2, accepted: true });
    expect((await finished(signalled.run_id)).run.result).toBe(8);
  });
});

describe("waiting and recovery", () => {
  it("a timer step waits, and watch goes on through it to the end", async () => {
    const run = await client.createRun({
      prompt: "wait a moment",
      plan: {
        steps: [
          { step_number: 1, tool_name: "wait", tool_input: { ms: 1000 } },
          { step_number: 2, tool_name: "calculator", tool_input: { expression: "1+1" }, depends_on: [1] },
        ],
      },
    });
    const { run: done, events } = await finished(run.run_id);
    expect(done.status).toBe("completed");
    const waited = events.find((e) => e.type === "step.waiting");
    expect(waited?.step_number).toBe(1);
    expect(waitingInfo(waited)).toMatchObject({ kind: "timer", until: expect.any(String) });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  });

  it("cancel with compensate undoes the steps that succeeded", async () => {
    const text = `compensate ${crypto.randomUUID()}`;
    const run = await client.createRun({
      prompt: "add a todo, then wait",
      plan: {
        steps: [
          { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } },
          { step_number: 2, tool_name: "wait", tool_input: { ms: 600_000 }, depends_on: [1] },
        ],
      },
    });
    await waitingStep(run.run_id, 2);
    await client.cancel(run.run_id, { compensate: true, reason: "changed my mind" });
    const { run: done, events } = await finished(run.run_id);
    expect(done.status).toBe("cancelled");
    expect(done.compensation).toMatchObject({
      status: "completed",
      steps: [expect.objectContaining({ step_number: 1, tool_name: "todo_store", status: "succeeded" })],
    });
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["compensation.started", "compensation.completed", "run.cancelled"]),
    );
  });

  it("rerun reuses what succeeded, applies tool_inputs and from_step, and is listed under rerun_of", async () => {
    const failed = await client.createRun({
      prompt: "six then a division by zero",
      plan: {
        steps: [
          { step_number: 1, tool_name: "calculator", tool_input: { expression: "2*3" } },
          { step_number: 2, tool_name: "calculator", tool_input: { expression: "{{steps.1.output}} / 0" } },
        ],
      },
    });
    expect(failed.status).toBe("failed");
    const key = crypto.randomUUID();
    const body = { tool_inputs: { "2": { expression: "{{steps.1.output}} / 2" } } };
    const rerun = await client.rerun(failed.run_id, body, { idempotencyKey: key });
    expect(rerun.rerun_of).toEqual({ run_id: failed.run_id, from_step: null });
    expect((await client.rerun(failed.run_id, body, { idempotencyKey: key })).run_id).toBe(rerun.run_id);
    const { run: done, events } = await finished(rerun.run_id);
    expect(done.result).toBe(3);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "step.reused",
        step_number: 1,
        data: expect.objectContaining({ from_run: failed.run_id }),
      }),
    );

    const again = await client.rerun(rerun.run_id, { from_step: 1 });
    expect(again.rerun_of).toEqual({ run_id: rerun.run_id, from_step: 1 });
    expect((await finished(again.run_id)).run.result).toBe(3);
    expect((await rejection(client.rerun(rerun.run_id, { from_step: 99 }))).status).toBe(422);

    // The list may trail the run by a moment (API.md: within 1 s).
    await poll("the rerun listed under rerun_of", async () => {
      const listed: string[] = [];
      for await (const r of client.runs({ rerun_of: failed.run_id })) listed.push(r.run_id);
      return listed.includes(rerun.run_id) ? listed : null;
    });
  });

  it("rerun of a run that has not finished is a 409", async () => {
    const run = await client.createRun(approvalPlan("hold on"));
    await waitingStep(run.run_id, 1);
    expect((await rejection(client.rerun(run.run_id))).status).toBe(409);
    await client.cancel(run.run_id);
  });
});
