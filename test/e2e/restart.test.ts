import { afterAll, expect, it } from "vitest";
import { LocalCrane } from "../../scripts/local-wrangler";
import type { Run, RunEvent } from "../../src/contracts/run";
import { poll as waitFor } from "../helpers/poll";

const crane = new LocalCrane();
afterAll(() => crane.dispose());

const poll = <T>(what: string, fn: () => Promise<T | null>, timeoutMs = 60_000) =>
  waitFor(what, fn, timeoutMs, () => crane.output.slice(-2000));

const getRun = async (id: string) => (await (await crane.api(`/api/v1/runs/${id}`)).json()) as Run;

it("a run survives kill -9 of the whole local runtime and finishes with no effect applied twice", {
  timeout: 180_000,
}, async () => {
  crane.migrate();
  await crane.start({ WATCHDOG_DISPATCH_GRACE_MS: "1000", WATCHDOG_REPORT_GRACE_MS: "500" });

  const text = `restart ${crypto.randomUUID()}`;
  const res = await crane.api("/api/v1/runs", {
    method: "POST",
    json: {
      prompt: "restart safety",
      options: { step_timeout_ms: 3000 },
      plan: {
        steps: [
          { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } },
          { step_number: 2, tool_name: "sleep", tool_input: { ms: 2000 } },
          {
            step_number: 3,
            tool_name: "text",
            tool_input: { operation: "uppercase", text: "{{steps.1.output.todo.text}}" },
            depends_on: [2],
          },
        ],
      },
    },
  });
  expect(res.status).toBe(201);
  const { run_id } = (await res.json()) as Run;

  // Kill while the sleep is running and the todo has been added: the worst moment.
  await poll("the todo step to succeed while the sleep runs", async () => {
    const run = await getRun(run_id);
    const [add, sleep] = run.execution_log;
    return add?.status === "succeeded" && sleep?.status === "running" ? run : null;
  });
  crane.kill();
  await crane.start({ WATCHDOG_DISPATCH_GRACE_MS: "1000", WATCHDOG_REPORT_GRACE_MS: "500" });

  const done = await poll("the run to finish after the restart", async () => {
    const run = await getRun(run_id);
    return ["completed", "failed", "cancelled"].includes(run.status) ? run : null;
  });
  expect(done.status).toBe("completed");
  expect(done.result).toBe(text.toUpperCase());
  // The sleep's consumer died with the runtime: the watchdog timed it out and ran it again.
  expect(done.execution_log[1]?.attempts).toBe(2);
  expect(done.execution_log[0]?.attempts).toBe(1);

  const events = (await (await crane.api(`/api/v1/runs/${run_id}/events`)).json()) as RunEvent[];
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  expect(events.filter((e) => e.type === "step.succeeded").map((e) => e.step_number)).toEqual([1, 2, 3]);

  const list = await crane.api("/api/v1/runs", { method: "POST", json: { prompt: "list todos" } });
  const listRun = await poll("the todo list", async () => {
    const run = await getRun(((await list.clone().json()) as Run).run_id);
    return run.status === "completed" ? run : null;
  });
  const todos = (listRun.result as { todos: { text: string }[] }).todos;
  expect(todos.filter((t) => t.text === text)).toHaveLength(1);
});
