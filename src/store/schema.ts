import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Todos of the `todo_store` tool, one list per tenant. */
export const todos = sqliteTable(
  "todos",
  {
    id: text("id").primaryKey(),
    tenant: text("tenant").notNull(),
    text: text("text").notNull(),
    completed: integer("completed", { mode: "boolean" }).notNull().default(false),
    createdAt: text("created_at").notNull(),
    completedAt: text("completed_at"),
  },
  (t) => [index("todos_tenant_created_idx").on(t.tenant, t.createdAt, t.id)],
);

/**
 * The recorded outcome of every side-effecting tool call, keyed by the step's idempotency key
 * (`run_id:step_number`). Written in the same D1 batch (a transaction) as the effect itself,
 * so a redelivered step finds it and returns the first outcome instead of acting again.
 */
export const toolEffects = sqliteTable(
  "tool_effects",
  {
    tenant: text("tenant").notNull(),
    idempotencyKey: text("idempotency_key").notNull(),
    tool: text("tool").notNull(),
    output: text("output", { mode: "json" }).notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.idempotencyKey] })],
);

/** API keys: only a SHA-256 hash of the secret is stored. */
export const apiKeys = sqliteTable(
  "api_keys",
  {
    keyId: text("key_id").primaryKey(),
    tenant: text("tenant").notNull(),
    name: text("name").notNull(),
    keyHash: text("key_hash").notNull().unique(),
    createdAt: text("created_at").notNull(),
    revokedAt: text("revoked_at"),
  },
  (t) => [index("api_keys_tenant_idx").on(t.tenant)],
);

export type TodoRow = typeof todos.$inferSelect;
