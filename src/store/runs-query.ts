import { and, desc, eq, gte, inArray, lt, or, type SQL, sql } from "drizzle-orm";
import type { Json } from "../contracts/common";
import { fromCursor, toCursor } from "../contracts/cursor";
import { isCalendarDate, type ListRunsQuery, type RunSummary } from "../contracts/history";
import type { RunStatus } from "../contracts/run";
import { chunk, type Database, MAX_BOUND_PARAMETERS } from "./db";
import { type RunRow, runSteps, runs } from "./schema";

interface Cursor {
  c: string; // created_at of the last row returned
  r: string; // its run_id
}

export const encodeCursor = (row: Pick<RunRow, "createdAt" | "runId">): string =>
  toCursor({ c: row.createdAt, r: row.runId } satisfies Cursor);

/** The position a cursor names (a real time, a run id), or null for anything this API did not make. */
export function decodeCursor(cursor: string): Cursor | null {
  const { c, r } = (fromCursor(cursor) ?? {}) as Partial<Record<keyof Cursor, unknown>>;
  return typeof c === "string" && typeof r === "string" && c.length <= 64 && r.length <= 64 && isCalendarDate(c)
    ? { c, r }
    : null;
}

const toSummary = (r: RunRow): RunSummary => ({
  run_id: r.runId,
  prompt: r.prompt,
  status: r.status as RunStatus,
  planner: r.planner,
  step_count: r.stepCount,
  result: (r.result ?? null) as Json,
  error: r.error,
  created_at: r.createdAt,
  completed_at: r.completedAt,
  duration_ms: r.durationMs,
  rerun_of: r.rerunOf ? { run_id: r.rerunOf, from_step: r.rerunFromStep } : null,
  compensation: r.compensation
    ? { status: (r.compensation as { status: "running" | "completed" | "failed" }).status }
    : null,
});

/** The WHERE clause of a listing; exported for the query-plan test. */
export function listFilter(tenant: string, q: ListRunsQuery, after: Cursor | null): SQL {
  const conditions: (SQL | undefined)[] = [eq(runs.tenant, tenant)];
  if (q.status) conditions.push(eq(runs.status, q.status));
  if (q.since) conditions.push(gte(runs.createdAt, q.since));
  if (q.until) conditions.push(lt(runs.createdAt, q.until));
  if (q.q) conditions.push(sql`instr(lower(${runs.prompt}), lower(${q.q})) > 0`);
  if (q.rerun_of) conditions.push(eq(runs.rerunOf, q.rerun_of));
  if (q.tool) {
    conditions.push(
      sql`exists (select 1 from ${runSteps} where ${runSteps.runId} = ${runs.runId} and ${runSteps.toolName} = ${q.tool})`,
    );
  }
  if (after) {
    conditions.push(or(lt(runs.createdAt, after.c), and(eq(runs.createdAt, after.c), lt(runs.runId, after.r))));
  }
  return and(...conditions) as SQL;
}

export function listRunsStatement(db: Database, tenant: string, q: ListRunsQuery, after: Cursor | null, count: number) {
  return db
    .select()
    .from(runs)
    .where(listFilter(tenant, q, after))
    .orderBy(desc(runs.createdAt), desc(runs.runId))
    .limit(count)
    .offset(q.offset ?? 0);
}

/**
 * Up to `count` archived runs from `q.offset`, newest first, keyset-paginated on
 * (created_at, run_id): a cursor walk sees every run once, however many runs are created
 * meanwhile (they sort before the cursor).
 */
export async function listRuns(
  db: Database,
  tenant: string,
  q: ListRunsQuery,
  after: Cursor | null,
  count: number,
): Promise<RunSummary[]> {
  return (await listRunsStatement(db, tenant, q, after, count).all()).map(toSummary);
}

/** Which of these runs of the tenant D1 already holds (a listing's overlap with the gate's rows). */
export async function archivedAmong(db: Database, tenant: string, runIds: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const part of chunk(runIds, MAX_BOUND_PARAMETERS - 10)) {
    const rows = await db
      .select({ runId: runs.runId })
      .from(runs)
      .where(and(eq(runs.tenant, tenant), inArray(runs.runId, part)))
      .all();
    for (const r of rows) found.add(r.runId);
  }
  return found;
}

/** Whether D1 holds a finished run's archive up to event `seq`: the condition to delete its object's storage. */
export async function archivedUpTo(db: Database, tenant: string, runId: string, seq: number): Promise<boolean> {
  const row = await db
    .select({ seq: runs.seq })
    .from(runs)
    .where(and(eq(runs.tenant, tenant), eq(runs.runId, runId), eq(runs.archived, true)))
    .get();
  return row !== undefined && row.seq >= seq;
}
