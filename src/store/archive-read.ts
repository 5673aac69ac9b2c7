import { and, asc, eq, gt } from "drizzle-orm";
import type { Json } from "../contracts/common";
import type { Plan } from "../contracts/plan";
import type { Compensation } from "../contracts/recovery";
import {
  type ExecutionLogEntry,
  type Run,
  type RunEvent,
  type RunOptions,
  type RunStatus,
  runOptionsSchema,
  type StepStatus,
} from "../contracts/run";
import type { Database } from "./db";
import { runEvents, runLogs, runSteps, runs } from "./schema";

/** The archived row of a finished run of this tenant, or null (unknown, another tenant's, or not archived yet). */
async function archivedRow(db: Database, tenant: string, runId: string) {
  const row = await db
    .select()
    .from(runs)
    .where(and(eq(runs.runId, runId), eq(runs.tenant, tenant), eq(runs.archived, true)))
    .get();
  return row ?? null;
}

/** A finished run read back from D1, in exactly the shape its coordinator served. */
export async function readArchivedRun(db: Database, tenant: string, runId: string): Promise<Run | null> {
  const row = await archivedRow(db, tenant, runId);
  if (!row) return null;
  const steps = await db
    .select()
    .from(runSteps)
    .where(eq(runSteps.runId, runId))
    .orderBy(asc(runSteps.stepNumber))
    .all();
  const log: ExecutionLogEntry[] = steps.map((s) => {
    const status = s.status as StepStatus;
    return {
      step_number: s.stepNumber,
      tool_name: s.toolName,
      tool_input: s.toolInput as Record<string, Json>,
      status,
      success: status === "succeeded" ? true : status === "failed" ? false : null,
      output: (s.output ?? null) as Json,
      error: s.error,
      attempts: s.attempts,
      started_at: s.startedAt,
      completed_at: s.completedAt,
      duration_ms: s.durationMs,
    };
  });
  return {
    run_id: row.runId,
    prompt: row.prompt,
    status: row.status as RunStatus,
    plan: (row.plan ?? null) as Plan | null,
    execution_log: log,
    result: (row.result ?? null) as Json,
    error: row.error,
    created_at: row.createdAt,
    started_at: row.startedAt,
    completed_at: row.completedAt,
    waiting_for: [],
    compensation: (row.compensation ?? null) as Compensation | null,
    rerun_of: row.rerunOf ? { run_id: row.rerunOf, from_step: row.rerunFromStep } : null,
    // Runs archived before v1.1 did not keep their options: the defaults they ran with, mostly.
    options: (row.options ?? runOptionsSchema.parse({})) as RunOptions,
  };
}

/** A finished run's archived events with `seq > after`, or null when there is no such archived run. */
export async function readArchivedEvents(
  db: Database,
  tenant: string,
  runId: string,
  after: number,
  limit: number,
): Promise<RunEvent[] | null> {
  if (!(await archivedRow(db, tenant, runId))) return null;
  const pages = await db
    .select({ events: runLogs.events })
    .from(runLogs)
    .where(and(eq(runLogs.runId, runId), eq(runLogs.tenant, tenant), gt(runLogs.lastSeq, after)))
    .orderBy(asc(runLogs.page))
    .all();
  if (pages.length > 0) {
    return pages
      .flatMap((p) => p.events as RunEvent[])
      .filter((e) => e.seq > after)
      .slice(0, limit);
  }
  // Runs archived before v1.1 keep one row per event.
  const rows = await db
    .select()
    .from(runEvents)
    .where(and(eq(runEvents.runId, runId), gt(runEvents.seq, after)))
    .orderBy(asc(runEvents.seq))
    .limit(limit)
    .all();
  return rows.map((r) => {
    const e: RunEvent = { seq: r.seq, type: r.type as RunEvent["type"], at: r.at };
    if (r.stepNumber !== null) e.step_number = r.stepNumber;
    if (r.attempt !== null) e.attempt = r.attempt;
    if (r.data !== null) e.data = r.data as Record<string, Json>;
    return e;
  });
}
