import { and, asc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import type { Json } from "../contracts/common";
import type { CompensateSpec } from "../contracts/recovery";
import { type TodoRow, todos, toolEffects } from "../store/schema";
import { nonRetryable } from "./errors";
import { DEFAULT_RETRY, defineTool, type ToolContext } from "./types";

const todoId = z.string().min(1).max(64);

const inputSchema = z.discriminatedUnion("action", [
  z.object({ action: z.literal("add"), text: z.string().trim().min(1).max(1000) }).strict(),
  z.object({ action: z.literal("list") }).strict(),
  z.object({ action: z.literal("get"), todo_id: todoId }).strict(),
  z.object({ action: z.literal("complete"), todo_id: todoId }).strict(),
  z.object({ action: z.literal("reopen"), todo_id: todoId }).strict(),
  z
    .object({
      action: z.literal("delete"),
      todo_id: todoId,
      /** A todo that is already gone counts as deleted (how a saga undoes an add: idempotently). */
      missing_ok: z.boolean().optional(),
    })
    .strict(),
]);
type Input = z.infer<typeof inputSchema>;

const toTodo = (row: TodoRow) => ({
  id: row.id,
  text: row.text,
  completed: row.completed,
  created_at: row.createdAt,
  completed_at: row.completedAt,
});

type Db = ReturnType<typeof drizzle>;

async function findTodo(db: Db, tenant: string, id: string): Promise<TodoRow> {
  const row = await db
    .select()
    .from(todos)
    .where(and(eq(todos.tenant, tenant), eq(todos.id, id)))
    .get();
  if (!row) throw nonRetryable(`Todo '${id}' not found`, "not_found");
  return row;
}

async function recordedOutcome(db: Db, ctx: ToolContext): Promise<Json | undefined> {
  const row = await db
    .select({ output: toolEffects.output })
    .from(toolEffects)
    .where(and(eq(toolEffects.tenant, ctx.tenant), eq(toolEffects.idempotencyKey, ctx.idempotencyKey)))
    .get();
  return row?.output as Json | undefined;
}

/**
 * Applies a mutation exactly once per idempotency key: the effect and its recorded outcome are
 * one D1 batch (a transaction). A concurrent duplicate loses on the primary key, its batch rolls
 * back whole, and it answers with the winner's outcome.
 */
async function once(
  db: Db,
  ctx: ToolContext,
  output: Json,
  mutation: Parameters<Db["batch"]>[0][number],
): Promise<Json> {
  const record = db.insert(toolEffects).values({
    tenant: ctx.tenant,
    idempotencyKey: ctx.idempotencyKey,
    tool: "todo_store",
    output,
    createdAt: new Date().toISOString(),
  });
  try {
    await db.batch([record, mutation]);
    return output;
  } catch (err) {
    const prior = await recordedOutcome(db, ctx);
    if (prior !== undefined) return prior;
    throw err;
  }
}

async function run(input: Input, ctx: ToolContext): Promise<Json> {
  const db = drizzle(ctx.env.DB);
  const { tenant } = ctx;
  switch (input.action) {
    case "list": {
      const rows = await db
        .select()
        .from(todos)
        .where(eq(todos.tenant, tenant))
        .orderBy(asc(todos.createdAt), asc(todos.id))
        .all();
      const completed = rows.filter((r) => r.completed).length;
      return {
        todos: rows.map(toTodo),
        total_count: rows.length,
        completed_count: completed,
        pending_count: rows.length - completed,
      };
    }
    case "get":
      return { todo: toTodo(await findTodo(db, tenant, input.todo_id)) };
    default:
      break;
  }

  const prior = await recordedOutcome(db, ctx);
  if (prior !== undefined) return prior;
  const now = new Date().toISOString();
  switch (input.action) {
    case "add": {
      const row: TodoRow = {
        id: crypto.randomUUID(),
        tenant,
        text: input.text,
        completed: false,
        createdAt: now,
        completedAt: null,
      };
      return once(db, ctx, { todo: toTodo(row) }, db.insert(todos).values(row));
    }
    case "complete": {
      const row = await findTodo(db, tenant, input.todo_id);
      const done = { ...row, completed: true, completedAt: row.completedAt ?? now };
      return once(
        db,
        ctx,
        // Whether it was done before this step: undoing a complete that changed nothing changes nothing.
        { todo: toTodo(done), was_completed: row.completed },
        db
          .update(todos)
          .set({ completed: true, completedAt: done.completedAt })
          .where(and(eq(todos.tenant, tenant), eq(todos.id, row.id))),
      );
    }
    case "reopen": {
      const row = await findTodo(db, tenant, input.todo_id);
      const open = { ...row, completed: false, completedAt: null };
      return once(
        db,
        ctx,
        { todo: toTodo(open) },
        db
          .update(todos)
          .set({ completed: false, completedAt: null })
          .where(and(eq(todos.tenant, tenant), eq(todos.id, row.id))),
      );
    }
    case "delete": {
      const found = await db
        .select()
        .from(todos)
        .where(and(eq(todos.tenant, tenant), eq(todos.id, input.todo_id)))
        .get();
      if (!found && input.missing_ok) return { deleted: false, todo_id: input.todo_id };
      const row = found ?? (await findTodo(db, tenant, input.todo_id));
      return once(
        db,
        ctx,
        { deleted: true, todo_id: row.id },
        db.delete(todos).where(and(eq(todos.tenant, tenant), eq(todos.id, row.id))),
      );
    }
  }
}

/** The todo an add or complete produced, from its recorded output. */
const todoIdOf = (output: Json): string | null => {
  const todo = output !== null && typeof output === "object" && !Array.isArray(output) ? output.todo : null;
  const id = todo !== null && typeof todo === "object" && !Array.isArray(todo) ? todo?.id : null;
  return typeof id === "string" ? id : null;
};

export const todoStoreTool = defineTool({
  name: "todo_store",
  description:
    "A persistent todo list per tenant: add (text), list, get / complete / reopen / delete (todo_id; missing_ok). " +
    "Re-running the same step never repeats its effect. Undone in a saga: add → delete, complete → reopen " +
    "(when it was not completed before).",
  inputSchema,
  effects: { resource: "todos", mode: "write" },
  modeFor: (input) => (input.action === "list" || input.action === "get" ? "read" : "write"),
  retry: DEFAULT_RETRY,
  execute: run,
  compensate: (input, output): CompensateSpec | null => {
    const id = todoIdOf(output);
    if (id === null) return null;
    if (input.action === "add") {
      return { tool_name: "todo_store", tool_input: { action: "delete", todo_id: id, missing_ok: true } };
    }
    const wasCompleted =
      output !== null && typeof output === "object" && !Array.isArray(output) && output.was_completed === true;
    if (input.action === "complete" && !wasCompleted) {
      return { tool_name: "todo_store", tool_input: { action: "reopen", todo_id: id } };
    }
    return null;
  },
});
