import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ToolError } from "../../src/tools/errors";
import { todoStoreTool } from "../../src/tools/todo-store";
import type { ToolContext } from "../../src/tools/types";

const ctx = (tenant: string, key: string): ToolContext => ({
  signal: new AbortController().signal,
  idempotencyKey: key,
  tenant,
  runId: key.split(":")[0] as string,
  stepNumber: 1,
  attempt: 1,
  env,
});
type Listed = {
  todos: { id: string; text: string }[];
  total_count: number;
  completed_count: number;
  pending_count: number;
};
const list = async (tenant: string) =>
  (await todoStoreTool.execute({ action: "list" }, ctx(tenant, "list:1"))) as Listed;

describe("todo_store against D1", () => {
  it("a redelivered step does not add a second todo", async () => {
    const first = await todoStoreTool.execute({ action: "add", text: "once" }, ctx("t-redeliver", "run-a:1"));
    const again = await todoStoreTool.execute({ action: "add", text: "once" }, ctx("t-redeliver", "run-a:1"));
    expect(again).toEqual(first);
    expect((await list("t-redeliver")).total_count).toBe(1);
  });

  it("concurrent duplicates of one step still add one todo, and both answer the same", async () => {
    const outputs = await Promise.all(
      Array.from({ length: 5 }, () => todoStoreTool.execute({ action: "add", text: "race" }, ctx("t-race", "run-b:1"))),
    );
    expect(new Set(outputs.map((o) => JSON.stringify(o))).size).toBe(1);
    expect((await list("t-race")).total_count).toBe(1);
  });

  it("different steps add different todos", async () => {
    await todoStoreTool.execute({ action: "add", text: "a" }, ctx("t-two", "run-c:1"));
    await todoStoreTool.execute({ action: "add", text: "b" }, ctx("t-two", "run-c:2"));
    expect((await list("t-two")).todos.map((t) => t.text)).toEqual(["a", "b"]);
  });

  it("completes and deletes exactly once per step, answering a replay with the first outcome", async () => {
    const added = (await todoStoreTool.execute({ action: "add", text: "x" }, ctx("t-life", "run-d:1"))) as {
      todo: { id: string };
    };
    const id = added.todo.id;
    const done = await todoStoreTool.execute({ action: "complete", todo_id: id }, ctx("t-life", "run-d:2"));
    expect(done).toMatchObject({ todo: { id, completed: true } });
    expect(await todoStoreTool.execute({ action: "complete", todo_id: id }, ctx("t-life", "run-d:2"))).toEqual(done);
    const counts = await list("t-life");
    expect([counts.completed_count, counts.pending_count]).toEqual([1, 0]);
    const deleted = await todoStoreTool.execute({ action: "delete", todo_id: id }, ctx("t-life", "run-d:3"));
    expect(deleted).toEqual({ deleted: true, todo_id: id });
    // The todo is gone, yet a redelivery of the delete step answers as the first delivery did.
    expect(await todoStoreTool.execute({ action: "delete", todo_id: id }, ctx("t-life", "run-d:3"))).toEqual(deleted);
    expect((await list("t-life")).total_count).toBe(0);
  });

  it("keeps tenants apart and reports an unknown id as a non-retryable error", async () => {
    const added = (await todoStoreTool.execute({ action: "add", text: "mine" }, ctx("t-one", "run-e:1"))) as {
      todo: { id: string };
    };
    expect((await list("t-other")).total_count).toBe(0);
    const err = await todoStoreTool
      .execute({ action: "get", todo_id: added.todo.id }, ctx("t-other", "run-f:1"))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).retryable).toBe(false);
    expect((err as ToolError).message).toBe(`Todo '${added.todo.id}' not found`);
  });
});
