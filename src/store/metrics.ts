import type { Metrics, Percentiles } from "../contracts/history";

// Nearest-rank percentiles with window functions: the rank of pP among n samples is ceil(n·P/100),
// computed in integers as (n·P + 99) / 100. Every query is bounded by the (tenant, created_at)
// prefix of an index, so a window costs what it holds, not the table.

export const RUNS_BY_STATUS_SQL = `
  SELECT status, COUNT(*) AS n FROM runs
  WHERE tenant = ?1 AND created_at >= ?2 AND created_at < ?3
  GROUP BY status`;

export const RUN_DURATIONS_SQL = `
  WITH d AS (
    SELECT duration_ms AS ms,
           ROW_NUMBER() OVER (ORDER BY duration_ms) AS rn,
           COUNT(*) OVER () AS n
    FROM runs
    WHERE tenant = ?1 AND created_at >= ?2 AND created_at < ?3 AND duration_ms IS NOT NULL
      AND status IN ('completed', 'failed'))
  SELECT MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN ms END) AS p50,
         MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN ms END) AS p95,
         MAX(CASE WHEN rn = (n * 99 + 99) / 100 THEN ms END) AS p99
  FROM d`;

export const COMPENSATIONS_BY_STATUS_SQL = `
  SELECT json_extract(compensation, '$.status') AS status, COUNT(*) AS n FROM runs
  WHERE tenant = ?1 AND created_at >= ?2 AND created_at < ?3 AND compensation IS NOT NULL
  GROUP BY json_extract(compensation, '$.status')`;

// Steps are reached through their runs (the runs index's range, then each run's steps by their
// primary key): run_steps has no index of its own to keep, so archiving a step writes one row.
export const STEPS_BY_STATUS_SQL = `
  SELECT s.status, COUNT(*) AS n FROM runs r JOIN run_steps s ON s.run_id = r.run_id
  WHERE r.tenant = ?1 AND r.created_at >= ?2 AND r.created_at < ?3
  GROUP BY s.status`;

export const TOOL_STATS_SQL = `
  WITH d AS (
    SELECT s.tool_name, s.status, s.duration_ms,
           ROW_NUMBER() OVER (PARTITION BY s.tool_name, s.duration_ms IS NULL ORDER BY s.duration_ms) AS rn,
           COUNT(s.duration_ms) OVER (PARTITION BY s.tool_name) AS n
    FROM runs r JOIN run_steps s ON s.run_id = r.run_id
    WHERE r.tenant = ?1 AND r.created_at >= ?2 AND r.created_at < ?3)
  SELECT tool_name AS tool,
         COUNT(*) AS steps,
         SUM(status = 'succeeded') AS succeeded,
         SUM(status = 'failed') AS failed,
         MAX(CASE WHEN duration_ms IS NOT NULL AND rn = (n * 50 + 99) / 100 THEN duration_ms END) AS p50,
         MAX(CASE WHEN duration_ms IS NOT NULL AND rn = (n * 95 + 99) / 100 THEN duration_ms END) AS p95,
         MAX(CASE WHEN duration_ms IS NOT NULL AND rn = (n * 99 + 99) / 100 THEN duration_ms END) AS p99
  FROM d GROUP BY tool_name ORDER BY tool_name`;

const rate = (ok: number, bad: number) => (ok + bad === 0 ? null : ok / (ok + bad));

const counts = (rows: { status: string; n: number }[]) => Object.fromEntries(rows.map((r) => [r.status, r.n]));
const total = (byStatus: Record<string, number>) => Object.values(byStatus).reduce((a, b) => a + b, 0);

/**
 * Run and step counts, success rates and duration percentiles of a tenant's runs created in
 * [since, until): finished runs from D1, plus `unfinished`
 * (runs still active or waiting, by status, from the tenant's gate) in the runs' counts.
 */
export async function metrics(
  d1: D1Database,
  tenant: string,
  since: string,
  until: string,
  unfinished: Record<string, number> = {},
): Promise<Metrics> {
  const bind = (q: string) => d1.prepare(q).bind(tenant, since, until);
  const [runsByStatus, runDurations, stepsByStatus, tools, compensations] = await d1.batch<Record<string, unknown>>([
    bind(RUNS_BY_STATUS_SQL),
    bind(RUN_DURATIONS_SQL),
    bind(STEPS_BY_STATUS_SQL),
    bind(TOOL_STATS_SQL),
    bind(COMPENSATIONS_BY_STATUS_SQL),
  ]);
  const compensationCounts = counts((compensations?.results ?? []) as { status: string; n: number }[]);
  const runCounts = counts((runsByStatus?.results ?? []) as { status: string; n: number }[]);
  for (const [status, n] of Object.entries(unfinished)) runCounts[status] = (runCounts[status] ?? 0) + n;
  const stepCounts = counts((stepsByStatus?.results ?? []) as { status: string; n: number }[]);
  const durations = (runDurations?.results?.[0] ?? { p50: null, p95: null, p99: null }) as Percentiles;
  type ToolRow = { tool: string; steps: number; succeeded: number; failed: number } & Percentiles;
  return {
    since,
    until,
    runs: {
      total: total(runCounts),
      by_status: runCounts,
      success_rate: rate(runCounts.completed ?? 0, runCounts.failed ?? 0),
      duration_ms: { p50: durations.p50, p95: durations.p95, p99: durations.p99 },
    },
    steps: { total: total(stepCounts), by_status: stepCounts },
    compensations: { total: total(compensationCounts), by_status: compensationCounts },
    tools: ((tools?.results ?? []) as ToolRow[]).map((t) => ({
      tool: t.tool,
      steps: t.steps,
      succeeded: t.succeeded,
      failed: t.failed,
      success_rate: rate(t.succeeded, t.failed),
      duration_ms: { p50: t.p50, p95: t.p95, p99: t.p99 },
    })),
  };
}
