import { afterAll, expect, it } from "vitest";
import { LocalCrane } from "../../scripts/local-wrangler";
import type { Run } from "../../src/contracts/run";
import { poll as waitFor } from "../helpers/poll";

const crane = new LocalCrane();
afterAll(() => crane.dispose());

const poll = <T>(what: string, fn: () => Promise<T | null>, timeoutMs = 60_000) =>
  waitFor(what, fn, timeoutMs, () => crane.output.slice(-2000));

const getRun = async (id: string) => (await (await crane.api(`/api/v1/runs/${id}`)).json()) as Run;
const waiting = (id: string) =>
  poll(`run ${id} to wait`, async () => {
    const run = await getRun(id);
    return run.execution_log[0]?.status === "waiting" ? run : null;
  });
const finished = (id: string) =>
  poll(`run ${id} to finish`, async () => {
    const run = await getRun(id);
    return ["completed", "failed", "cancelled"].includes(run.status) ? run : null;
  });

/** A control step, then a todo write (counted once at the end), then a calculation that needs both. */
function plan(control: Record<string, unknown>, text: string) {
  return {
    prompt: `restart while waiting: ${text}`,
    plan: {
      steps: [
        { step_number: 1, ...control },
        { step_number: 2, tool_name: "todo_store", tool_input: { action: "add", text }, depends_on: [1] },
        { step_number: 3, tool_name: "calculator", tool_input: { expression: "6 * 7" }, depends_on: [2] },
      ],
    },
  };
}

it("runs waiting on a timer, an approval and a signal survive kill -9 of the runtime and all go on", {
  timeout: 180_000,
}, async () => {
  crane.migrate();
  await crane.start();
  const tag = crypto.randomUUID().slice(0, 8);
  const create = async (control: Record<string, unknown>, text: string) => {
    const res = await crane.api("/api/v1/runs", { method: "POST", json: plan(control, text) });
    expect(res.status).toBe(201);
    return ((await res.json()) as Run).run_id;
  };
  // The timer is long enough to outlive the restart and short enough for the test.
  const timer = await create({ tool_name: "wait", tool_input: { ms: 15_000 } }, `timer ${tag}`);
  const approval = await create({ tool_name: "approval", tool_input: { message: "ship it?" } }, `approval ${tag}`);
  const signal = await create({ tool_name: "signal", tool_input: { name: "go" } }, `signal ${tag}`);
  await waiting(timer);
  const approvalRun = await waiting(approval);
  await waiting(signal);
  const callback = approvalRun.execution_log[0]?.waiting?.callback_url ?? "";
  expect(callback).toMatch(/\/api\/v1\/callbacks\/[0-9a-f]{64}\.[A-Za-z0-9_-]+$/);

  const killedAt = Date.now();
  crane.kill();
  await crane.start();

  // Nothing was lost: the waits still answer (and the timer wakes after the restart, below).
  const approved = await fetch(`${crane.url}${new URL(callback).pathname}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ approve: true, comment: "after the restart" }),
  });
  expect(approved.status).toBe(200);
  const signalled = await crane.api(`/api/v1/runs/${signal}/signals/go`, { method: "POST", json: { data: { ok: 1 } } });
  expect(signalled.status).toBe(202);

  // The timer's alarm fires by itself after the restart.
  for (const id of [timer, approval, signal]) {
    const run = await finished(id);
    expect(run.status, id).toBe("completed");
    expect(run.result).toBe(42);
  }
  // It was still waiting when the runtime died: it woke after the kill, by the alarm of the new runtime.
  const woke = (await getRun(timer)).execution_log[0]?.output as { waited_ms: number; woke_at: string };
  expect(woke.waited_ms).toBeGreaterThanOrEqual(15_000);
  expect(Date.parse(woke.woke_at)).toBeGreaterThan(killedAt);
  expect((await getRun(approval)).execution_log[0]?.output).toMatchObject({
    approved: true,
    comment: "after the restart",
    decided_by: "callback",
  });
  expect((await getRun(signal)).execution_log[0]?.output).toMatchObject({ name: "go", data: { ok: 1 } });

  // Each run's todo exists once.
  const list = await crane.api("/api/v1/runs", { method: "POST", json: { prompt: "list todos" } });
  const listed = await finished(((await list.json()) as Run).run_id);
  const texts = (listed.result as { todos: { text: string }[] }).todos.map((t) => t.text);
  for (const text of [`timer ${tag}`, `approval ${tag}`, `signal ${tag}`]) {
    expect(
      texts.filter((t) => t === text),
      text,
    ).toHaveLength(1);
  }
});
