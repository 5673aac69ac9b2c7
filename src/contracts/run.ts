import { z } from "zod";
import { jsonObjectSchema, jsonSchema, timestampSchema } from "./common";
import { LIMITS } from "./limits";
import { backoffOverrideSchema, planInputSchema, planSchema } from "./plan";

export const runOptionsSchema = z
  .object({
    max_parallel: z.number().int().min(1).max(LIMITS.maxParallel).default(8),
    step_timeout_ms: z.number().int().min(LIMITS.minStepTimeoutMs).max(LIMITS.maxStepTimeoutMs).default(30_000),
    /** Left out: each tool's own `retry.max_attempts` (3 for the built-in tools). */
    max_attempts: z.number().int().min(1).max(LIMITS.maxAttempts).optional(),
    on_failure: z.enum(["fail_fast", "continue"]).default("fail_fast"),
    retry: backoffOverrideSchema.optional(),
  })
  .strict()
  .meta({ id: "RunOptions" });
export type RunOptions = z.infer<typeof runOptionsSchema>;

export const plannerChoiceSchema = z.enum(["auto", "rules", "llm"]);
export type PlannerChoice = z.infer<typeof plannerChoiceSchema>;

export const createRunBodySchema = z
  .object({
    prompt: z
      .string({ error: "prompt is required and must be a string" })
      .trim()
      .min(1, "prompt must not be empty")
      .max(LIMITS.maxPromptChars, `prompt must be at most ${LIMITS.maxPromptChars} characters`),
    plan: planInputSchema.nullable().optional(),
    planner: plannerChoiceSchema.default("auto"),
    options: runOptionsSchema.default(runOptionsSchema.parse({})),
  })
  .strict()
  .meta({ id: "CreateRun" });
export type CreateRunBody = z.infer<typeof createRunBodySchema>;

export const runStatusSchema = z.enum(["pending", "running", "completed", "failed", "cancelled"]);
export type RunStatus = z.infer<typeof runStatusSchema>;

export const stepStatusSchema = z.enum(["pending", "running", "succeeded", "failed", "skipped", "cancelled"]);
export type StepStatus = z.infer<typeof stepStatusSchema>;

export const executionLogEntrySchema = z
  .object({
    step_number: z.number().int(),
    tool_name: z.string(),
    tool_input: jsonObjectSchema,
    status: stepStatusSchema,
    success: z.boolean().nullable(),
    output: jsonSchema.nullable(),
    error: z.string().nullable(),
    attempts: z.number().int(),
    started_at: timestampSchema.nullable(),
    completed_at: timestampSchema.nullable(),
    duration_ms: z.number().int().nullable(),
  })
  .meta({ id: "ExecutionLogEntry" });
export type ExecutionLogEntry = z.infer<typeof executionLogEntrySchema>;

export const runSchema = z
  .object({
    run_id: z.string(),
    prompt: z.string(),
    status: runStatusSchema,
    plan: planSchema.nullable(),
    execution_log: z.array(executionLogEntrySchema),
    result: jsonSchema.nullable(),
    error: z.string().nullable(),
    created_at: timestampSchema,
    started_at: timestampSchema.nullable(),
    completed_at: timestampSchema.nullable(),
  })
  .meta({ id: "Run" });
export type Run = z.infer<typeof runSchema>;

export const eventTypeSchema = z.enum([
  "run.created",
  "plan.llm_call",
  "plan.fallback",
  "run.planned",
  "step.dispatched",
  "step.started",
  "step.succeeded",
  "step.failed",
  "step.retry_scheduled",
  "step.skipped",
  "step.cancelled",
  "step.ignored",
  "step.dead_lettered",
  "run.completed",
  "run.failed",
  "run.cancelled",
]);
export type EventType = z.infer<typeof eventTypeSchema>;

export const runEventSchema = z
  .object({
    seq: z.number().int().min(1),
    type: eventTypeSchema,
    at: timestampSchema,
    step_number: z.number().int().optional(),
    attempt: z.number().int().optional(),
    data: jsonObjectSchema.optional(),
  })
  .meta({ id: "Event" });
export type RunEvent = z.infer<typeof runEventSchema>;

/** What the live WebSocket sends, server → client. */
export const liveMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("snapshot"), run: runSchema, seq: z.number().int().min(0) }),
  z.object({ type: z.literal("event"), event: runEventSchema }),
]);
export type LiveMessage = z.infer<typeof liveMessageSchema>;

export const runIdParamSchema = z.object({
  run_id: z
    .string()
    .min(1)
    .max(64)
    .meta({ param: { name: "run_id", in: "path" }, example: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" }),
});

/** `?after=N`: the sequence number after which events are wanted (events and live). */
export const afterParamSchema = z.coerce
  .number({ error: "after must be an integer ≥ 0" })
  .int("after must be an integer ≥ 0")
  .min(0, "after must be an integer ≥ 0");

export const eventsQuerySchema = z.object({
  after: afterParamSchema.default(0),
  limit: z.coerce
    .number({ error: `limit must be an integer between 1 and ${LIMITS.maxEventsPage}` })
    .int(`limit must be an integer between 1 and ${LIMITS.maxEventsPage}`)
    .min(1, `limit must be an integer between 1 and ${LIMITS.maxEventsPage}`)
    .max(LIMITS.maxEventsPage, `limit must be an integer between 1 and ${LIMITS.maxEventsPage}`)
    .default(LIMITS.maxEventsPage),
});
