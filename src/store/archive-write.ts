/**
 * The archive's statements, written as SQL rather than through drizzle's query builder: they are
 * the same for every run (only their values change) and run for every run that finishes, where
 * the builder cost more than the statements' own work (`src/store/schema.ts` is their schema).
 */
import type { RunSnapshot } from "../run/snapshot";
import { chunk, MAX_BOUND_PARAMETERS } from "./db";

const durationOf = (start: string | null, end: string | null) =>
  start && end ? Date.parse(end) - Date.parse(start) : null;

/** A JSON column's value as drizzle's `{ mode: "json" }` stores it: text, or NULL for null. */
const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));

/** `column = excluded.column` for every column but the key and those never updated. */
const updates = (columns: readonly string[], kept: readonly string[]) =>
  columns
    .filter((c) => !kept.includes(c))
    .map((c) => `${c} = excluded.${c}`)
    .join(", ");

const RUN_COLUMNS = [
  "run_id",
  "tenant",
  "prompt",
  "status",
  "planner",
  "plan",
  "step_count",
  "result",
  "error",
  "created_at",
  "started_at",
  "completed_at",
  "duration_ms",
  "seq",
  "archived",
  "rerun_of",
  "rerun_from_step",
  "compensation",
  "options",
] as const;
/** Everything but the key, the tenant and the creation time, and only from a snapshot at least as new. */
const UPSERT_RUN = `INSERT INTO runs (${RUN_COLUMNS.join(", ")}) VALUES (${RUN_COLUMNS.map(() => "?").join(", ")})
  ON CONFLICT (run_id) DO UPDATE SET ${updates(RUN_COLUMNS, ["run_id", "tenant", "created_at"])}
  WHERE excluded.seq >= runs.seq`;

const STEP_COLUMNS = [
  "run_id",
  "step_number",
  "tenant",
  "tool_name",
  "tool_input",
  "status",
  "output",
  "error",
  "attempts",
  "started_at",
  "completed_at",
  "duration_ms",
  "created_at",
] as const;
/** Steps per statement: D1 binds at most `MAX_BOUND_PARAMETERS` (the run's id and seq take two). */
const STEPS_PER_STATEMENT = Math.floor((MAX_BOUND_PARAMETERS - 2) / STEP_COLUMNS.length);
const stepRow = `(${STEP_COLUMNS.map(() => "?").join(", ")})`;
/** Only while the run row still holds this snapshot's seq or an older one. */
const upsertSteps = (
  n: number,
) => `INSERT INTO run_steps (${STEP_COLUMNS.join(", ")}) VALUES ${Array(n).fill(stepRow).join(", ")}
  ON CONFLICT (run_id, step_number) DO UPDATE SET ${updates(STEP_COLUMNS, ["run_id", "step_number", "tenant", "tool_name", "created_at"])}
  WHERE (SELECT seq FROM runs WHERE run_id = ?) <= ?`;

const UPSERT_LOG = `INSERT INTO run_logs (run_id, page, tenant, last_seq, events) VALUES (?, ?, ?, ?, ?)
  ON CONFLICT (run_id, page) DO UPDATE SET events = excluded.events, last_seq = excluded.last_seq
  WHERE excluded.last_seq >= run_logs.last_seq`;

/**
 * The statements that bring D1 up to a run's snapshot. Idempotent and monotonic: rows carry
 * the snapshot's `seq` and an older snapshot never overwrites a newer one, so redelivered or
 * reordered sync messages are harmless.
 */
export function syncStatements(d1: D1Database, snap: RunSnapshot): D1PreparedStatement[] {
  const { run, tenant, seq } = snap;
  const statements = [
    d1
      .prepare(UPSERT_RUN)
      .bind(
        run.run_id,
        tenant,
        run.prompt,
        run.status,
        snap.planner,
        json(run.plan),
        run.execution_log.length,
        json(run.result),
        run.error,
        run.created_at,
        run.started_at,
        run.completed_at,
        durationOf(run.created_at, run.completed_at),
        seq,
        snap.finished && snap.events !== null ? 1 : 0,
        run.rerun_of?.run_id ?? null,
        run.rerun_of?.from_step ?? null,
        json(run.compensation),
        json(run.options),
      ),
  ];
  for (const part of chunk(run.execution_log, STEPS_PER_STATEMENT)) {
    const values = part.flatMap((e) => [
      run.run_id,
      e.step_number,
      tenant,
      e.tool_name,
      json(e.tool_input),
      e.status,
      json(e.output),
      e.error,
      e.attempts,
      e.started_at,
      e.completed_at,
      e.duration_ms,
      run.created_at,
    ]);
    statements.push(d1.prepare(upsertSteps(part.length)).bind(...values, run.run_id, seq));
  }
  let page = 0;
  for (const events of logPages(snap.events ?? [])) {
    const lastSeq = events.at(-1)?.seq ?? 0;
    statements.push(d1.prepare(UPSERT_LOG).bind(run.run_id, page, tenant, lastSeq, JSON.stringify(events)));
    page++;
  }
  return statements;
}

/** A page of a run's archived log stays well under D1's 2 MB value limit. */
export const MAX_LOG_PAGE_CHARS = 512 * 1024;

/** Splits a log into pages of at most `MAX_LOG_PAGE_CHARS` of JSON (one page for nearly every run). */
export function logPages<E>(events: readonly E[]): E[][] {
  const pages: E[][] = [];
  let current: E[] = [];
  let size = 2;
  for (const e of events) {
    const n = JSON.stringify(e).length + 1;
    if (current.length > 0 && size + n > MAX_LOG_PAGE_CHARS) {
      pages.push(current);
      current = [];
      size = 2;
    }
    current.push(e);
    size += n;
  }
  if (current.length > 0) pages.push(current);
  return pages;
}

/** Most statements sent in one D1 batch (one round trip, one transaction). */
export const MAX_BATCH_STATEMENTS = 100;

/**
 * Groups whole runs' statements into batches of at most `MAX_BATCH_STATEMENTS`, so that many
 * runs ending together cost few D1 round trips and each run's rows land atomically.
 */
export function batchRuns<S>(perRun: S[][]): S[][] {
  const batches: S[][] = [];
  let current: S[] = [];
  for (const statements of perRun) {
    if (current.length > 0 && current.length + statements.length > MAX_BATCH_STATEMENTS) {
      batches.push(current);
      current = [];
    }
    current.push(...statements);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
