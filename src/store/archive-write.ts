import { sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { RunSnapshot } from "../run/snapshot";
import { chunk, type Database, MAX_BOUND_PARAMETERS } from "./db";
import { runLogs, runSteps, runs } from "./schema";

type Statement = BatchItem<"sqlite">;

const durationOf = (start: string | null, end: string | null) =>
  start && end ? Date.parse(end) - Date.parse(start) : null;

/**
 * The statements that bring D1 up to a run's snapshot. Idempotent and monotonic: rows carry
 * the snapshot's `seq` and an older snapshot never overwrites a newer one, so redelivered or
 * reordered sync messages are harmless.
 */
export function syncStatements(db: Database, snap: RunSnapshot): Statement[] {
  const { run, tenant, seq } = snap;
  const row = {
    runId: run.run_id,
    tenant,
    prompt: run.prompt,
    status: run.status,
    planner: snap.planner,
    plan: run.plan,
    stepCount: run.execution_log.length,
    result: run.result,
    error: run.error,
    createdAt: run.created_at,
    startedAt: run.started_at,
    completedAt: run.completed_at,
    durationMs: durationOf(run.created_at, run.completed_at),
    seq,
    archived: snap.finished && snap.events !== null,
    rerunOf: run.rerun_of?.run_id ?? null,
    rerunFromStep: run.rerun_of?.from_step ?? null,
    compensation: run.compensation,
    options: run.options,
  };
  const { runId: _id, tenant: _t, createdAt: _c, ...updatable } = row;
  const statements: Statement[] = [
    db
      .insert(runs)
      .values(row)
      .onConflictDoUpdate({ target: runs.runId, set: updatable, setWhere: sql`excluded.seq >= ${runs.seq}` }),
  ];

  const steps = run.execution_log.map((e) => ({
    runId: run.run_id,
    stepNumber: e.step_number,
    tenant,
    toolName: e.tool_name,
    toolInput: e.tool_input,
    status: e.status,
    output: e.output,
    error: e.error,
    attempts: e.attempts,
    startedAt: e.started_at,
    completedAt: e.completed_at,
    durationMs: e.duration_ms,
    createdAt: run.created_at,
  }));
  for (const part of chunk(steps, Math.floor(MAX_BOUND_PARAMETERS / 13))) {
    statements.push(
      db
        .insert(runSteps)
        .values(part)
        .onConflictDoUpdate({
          target: [runSteps.runId, runSteps.stepNumber],
          set: {
            toolInput: sql`excluded.tool_input`,
            status: sql`excluded.status`,
            output: sql`excluded.output`,
            error: sql`excluded.error`,
            attempts: sql`excluded.attempts`,
            startedAt: sql`excluded.started_at`,
            completedAt: sql`excluded.completed_at`,
            durationMs: sql`excluded.duration_ms`,
          },
          // Only while the run row still holds this snapshot's seq or an older one.
          setWhere: sql`(SELECT seq FROM runs WHERE run_id = ${run.run_id}) <= ${seq}`,
        }),
    );
  }

  let page = 0;
  for (const events of logPages(snap.events ?? [])) {
    const lastSeq = events.at(-1)?.seq ?? 0;
    statements.push(
      db
        .insert(runLogs)
        .values({ runId: run.run_id, page, tenant, lastSeq, events })
        .onConflictDoUpdate({
          target: [runLogs.runId, runLogs.page],
          set: { events: sql`excluded.events`, lastSeq: sql`excluded.last_seq` },
          setWhere: sql`excluded.last_seq >= ${runLogs.lastSeq}`,
        }),
    );
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
export function batchRuns(perRun: Statement[][]): Statement[][] {
  const batches: Statement[][] = [];
  let current: Statement[] = [];
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
