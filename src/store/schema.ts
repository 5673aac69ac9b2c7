import { sql } from "drizzle-orm";
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
    /** Per-key overrides of the default quotas; null means the deployment's defaults. */
    rateLimitRequests: integer("rate_limit_requests"),
    rateLimitWindowS: integer("rate_limit_window_s"),
    maxActiveRuns: integer("max_active_runs"),
  },
  (t) => [index("api_keys_tenant_idx").on(t.tenant)],
);

export type TodoRow = typeof todos.$inferSelect;

/**
 * The run index: a row from the moment a run is created (status kept current), completed with
 * the summary when it ends. `GET /runs` and `/metrics` read it; a run whose Durable Object was
 * cleaned up after the retention period is read back from here.
 */
export const runs = sqliteTable(
  "runs",
  {
    runId: text("run_id").primaryKey(),
    tenant: text("tenant").notNull(),
    prompt: text("prompt").notNull(),
    status: text("status").notNull(),
    planner: text("planner"),
    plan: text("plan", { mode: "json" }),
    stepCount: integer("step_count").notNull(),
    result: text("result", { mode: "json" }),
    error: text("error"),
    createdAt: text("created_at").notNull(),
    startedAt: text("started_at"),
    completedAt: text("completed_at"),
    durationMs: integer("duration_ms"),
    /** Sequence number of the last event this row reflects; older snapshots never overwrite newer ones. */
    seq: integer("seq").notNull(),
    /** True once the full archive (steps and events of a finished run) is written. */
    archived: integer("archived", { mode: "boolean" }).notNull().default(false),
    /** v1.1: the run this one reruns, and the step it reran from. */
    rerunOf: text("rerun_of"),
    rerunFromStep: integer("rerun_from_step"),
    /** v1.1: the compensation (saga) that ran, as the Run shows it. */
    compensation: text("compensation", { mode: "json" }),
    /** v1.1: the options the run executed with. */
    options: text("options", { mode: "json" }),
  },
  (t) => [
    index("runs_tenant_created_idx").on(t.tenant, t.createdAt, t.runId),
    // Partial: only reruns have an entry, so archiving any other run writes one index row fewer
    // (D1 bills index entries as rows written); `rerun_of = ?` implies the condition.
    index("runs_tenant_rerun_of_idx").on(t.tenant, t.rerunOf, t.createdAt).where(sql`${t.rerunOf} IS NOT NULL`),
    index("runs_tenant_status_created_idx").on(t.tenant, t.status, t.createdAt, t.runId),
  ],
);

/** A run's steps: written from the plan at creation (so `?tool=` finds in-flight runs), final at the end. */
export const runSteps = sqliteTable(
  "run_steps",
  {
    runId: text("run_id").notNull(),
    stepNumber: integer("step_number").notNull(),
    tenant: text("tenant").notNull(),
    toolName: text("tool_name").notNull(),
    toolInput: text("tool_input", { mode: "json" }).notNull(),
    status: text("status").notNull(),
    output: text("output", { mode: "json" }),
    error: text("error"),
    attempts: integer("attempts").notNull(),
    startedAt: text("started_at"),
    completedAt: text("completed_at"),
    durationMs: integer("duration_ms"),
    createdAt: text("created_at").notNull(),
  },
  // No secondary index: `/metrics` reaches steps through their runs, and `?tool=` looks up a
  // run's steps by this key, so archiving a step writes one row (D1 bills index entries as rows).
  (t) => [primaryKey({ columns: [t.runId, t.stepNumber] })],
);

/**
 * The event log of a finished run as one row (a JSON array), so archiving a run writes one row
 * rather than one per event; a log too large for one D1 value is split over pages 0, 1, ….
 */
export const runLogs = sqliteTable(
  "run_logs",
  {
    runId: text("run_id").notNull(),
    page: integer("page").notNull(),
    tenant: text("tenant").notNull(),
    /** Sequence number of the last event the page holds. */
    lastSeq: integer("last_seq").notNull(),
    events: text("events", { mode: "json" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.page] })],
);

/** The event log of a finished run, one row per event: how runs archived before v1.1 are stored (read only). */
export const runEvents = sqliteTable(
  "run_events",
  {
    runId: text("run_id").notNull(),
    seq: integer("seq").notNull(),
    type: text("type").notNull(),
    at: text("at").notNull(),
    stepNumber: integer("step_number"),
    attempt: integer("attempt"),
    data: text("data", { mode: "json" }),
  },
  (t) => [primaryKey({ columns: [t.runId, t.seq] })],
);

export type RunRow = typeof runs.$inferSelect;
export type RunStepRow = typeof runSteps.$inferSelect;

/** `Idempotency-Key`s of `POST /runs`, kept 24 h: the same key and body replay the same run. */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    tenant: text("tenant").notNull(),
    key: text("key").notNull(),
    bodyHash: text("body_hash").notNull(),
    runId: text("run_id").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.key] })],
);
