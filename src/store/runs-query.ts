import { and, desc, eq, gte, lt, or, type SQL, sql } from "drizzle-orm";
import type { Json } from "../contracts/common";
import type { ListRunsQuery, RunSummary } from "../contracts/history";
import type { RunStatus } from "../contracts/run";
import type { Database } from "./db";
import { type RunRow, runSteps, runs } from "./schema";

interface Cursor {
  c: string; // created_at of the last row returned
  r: string; // its run_id
}

export const encodeCursor = (row: Pick<RunRow, "createdAt" | "runId">): string =>
  btoa(JSON.stringify({ c: row.createdAt, r: row.runId } satisfies Cursor))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "");

/** The position a cursor names, or null for a cursor this API did not make. */
export function decodeCursor(cursor: string): Cursor | null {
  try {
    const json = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/"))) as Partial<Cursor>;
    return typeof json.c === "string" && typeof json.r === "string" ? { c: json.c, r: json.r } : null;
  } catch (err) {
    if (err instanceof SyntaxError || (err instanceof DOMException && err.name === "InvalidCharacterError"))
      return null;
    throw err;
  }
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
  rerun_of: null,
  compensation: null,
});

/** The WHERE clause of a listing; exported for the query-plan test. */
export function listFilter(tenant: string, q: ListRunsQuery, after: Cursor | null): SQL {
  const conditions: (SQL | undefined)[] = [eq(runs.tenant, tenant)];
  if (q.status) conditions.push(eq(runs.status, q.status));
  if (q.since) conditions.push(gte(runs.createdAt, q.since));
  if (q.until) conditions.push(lt(runs.createdAt, q.until));
  if (q.q) conditions.push(sql`instr(lower(${runs.prompt}), lower(${q.q})) > 0`);
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

export function listRunsStatement(db: Database, tenant: string, q: ListRunsQuery, after: Cursor | null) {
  return db
    .select()
    .from(runs)
    .where(listFilter(tenant, q, after))
    .orderBy(desc(runs.createdAt), desc(runs.runId))
    .limit(q.limit + 1)
    .offset(q.offset ?? 0);
}

/**
 * Newest first, keyset-paginated on (created_at, run_id): a cursor walk sees every run once,
 * however many runs are created meanwhile (they sort before the cursor).
 */
export async function listRuns(
  db: Database,
  tenant: string,
  q: ListRunsQuery,
  after: Cursor | null,
): Promise<{ runs: RunSummary[]; next: string | null }> {
  const rows = await listRunsStatement(db, tenant, q, after).all();
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return { runs: page.map(toSummary), next: rows.length > q.limit && last ? encodeCursor(last) : null };
}
