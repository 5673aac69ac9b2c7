import { z } from "zod";
import { presentJsonSchema, queryInt, queryIntOr, timestampSchema } from "./common";
import { LIMITS } from "./limits";
import { compensationStatusSchema, rerunOfSchema } from "./recovery";
import { runStatusSchema } from "./run";

const LIMIT_MESSAGE = "limit must be an integer between 1 and 100";
const OFFSET_MESSAGE = `offset must be an integer between 0 and ${LIMITS.maxListOffset} (use the cursor for deeper pages)`;
const isoMessage = (name: string) => `${name} must be an ISO-8601 timestamp (e.g. 2026-11-26T12:00:00Z)`;

/** Whether text starts with a date that exists (`2026-02-30` does not; `Date.parse` would roll it over). */
export function isCalendarDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (!m || Number.isNaN(Date.parse(s))) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Not Date.UTC, which reads years 0–99 as 1900–1999 (0001-01-01 is many clients' zero time).
  const day = new Date(0);
  day.setUTCFullYear(y, mo - 1, d);
  return day.getUTCFullYear() === y && day.getUTCMonth() === mo - 1 && day.getUTCDate() === d;
}

/** The instants stored timestamps can name (four-digit years), which a query's bound is held to. */
const FIRST_INSTANT = Date.parse("0000-01-01T00:00:00.000Z");
const LAST_INSTANT = Date.parse("9999-12-31T23:59:59.999Z");

/**
 * An instant in a query, normalised to the form timestamps are stored in (they are compared as
 * text): an offset that carries it past year 9999 (or before year 0) is held at the edge, which
 * bounds the same runs — `toISOString` would write `+010000-…`, which sorts before `2026-…`.
 */
const isoQuery = (name: string) =>
  z
    .string()
    .refine(isCalendarDate, isoMessage(name))
    .transform((s) => new Date(Math.min(LAST_INSTANT, Math.max(FIRST_INSTANT, Date.parse(s)))).toISOString());

/** `limit` of a list (GET /runs, GET /approvals): 1–100, default 10. */
export const listLimitSchema = queryIntOr(LIMIT_MESSAGE, 1, 100, 10);

export const listRunsQuerySchema = z
  .object({
    limit: listLimitSchema,
    offset: queryInt(OFFSET_MESSAGE, 0, LIMITS.maxListOffset)
      .optional()
      .meta({ description: `Runs to skip, at most ${LIMITS.maxListOffset}: deeper pages need the cursor` }),
    cursor: z.string().max(200, "cursor is not valid").optional(),
    status: runStatusSchema.optional(),
    tool: z.string().min(1, "tool must not be empty").max(64, "tool must be at most 64 characters").optional(),
    since: isoQuery("since").optional(),
    until: isoQuery("until").optional(),
    q: z.string().min(1, "q must not be empty").max(200, "q must be at most 200 characters").optional(),
    /** v1.1: the reruns of this run. */
    rerun_of: z.string().min(1, "rerun_of must not be empty").max(64, "rerun_of must be a run id").optional(),
  })
  .refine((v) => v.offset === undefined || v.cursor === undefined, {
    message: "offset and cursor cannot be used together",
    path: ["cursor"],
  });
export type ListRunsQuery = z.infer<typeof listRunsQuerySchema>;

export const runSummarySchema = z
  .object({
    run_id: z.string(),
    prompt: z.string(),
    status: runStatusSchema,
    planner: z.string().nullable(),
    step_count: z.number().int(),
    result: presentJsonSchema.nullable(),
    error: z.string().nullable(),
    created_at: timestampSchema,
    completed_at: timestampSchema.nullable(),
    duration_ms: z.number().int().nullable(),
    /** v1.1 */
    rerun_of: rerunOfSchema.nullable(),
    /** v1.1: the compensation's status, or null when none ran. */
    compensation: z.object({ status: compensationStatusSchema }).nullable(),
  })
  .meta({ id: "RunSummary" });
export type RunSummary = z.infer<typeof runSummarySchema>;

export const metricsQuerySchema = z.object({
  since: isoQuery("since").optional(),
  until: isoQuery("until").optional(),
});

const percentilesSchema = z
  .object({ p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() })
  .meta({ id: "Percentiles", description: "Nearest-rank percentiles in milliseconds; null with no samples" });
export type Percentiles = z.infer<typeof percentilesSchema>;

const byStatus = z.record(z.string(), z.number().int());

export const metricsSchema = z
  .object({
    since: timestampSchema,
    until: timestampSchema,
    runs: z.object({
      total: z.number().int(),
      by_status: byStatus,
      success_rate: z.number().nullable().meta({ description: "completed / (completed + failed); null when none" }),
      duration_ms: percentilesSchema,
    }),
    steps: z.object({ total: z.number().int(), by_status: byStatus }),
    /** v1.1: runs that compensated, by the compensation's status (`completed`, `failed`). */
    compensations: z.object({ total: z.number().int(), by_status: byStatus }),
    tools: z.array(
      z.object({
        tool: z.string(),
        steps: z.number().int(),
        succeeded: z.number().int(),
        failed: z.number().int(),
        success_rate: z.number().nullable(),
        duration_ms: percentilesSchema,
      }),
    ),
  })
  .meta({ id: "Metrics" });
export type Metrics = z.infer<typeof metricsSchema>;
