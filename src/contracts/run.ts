import { z } from "zod";
import { agentCallSchema } from "./agent";
import { jsonObjectSchema, presentJsonSchema, queryInt, queryIntOr, timestampSchema } from "./common";
import { LIMITS } from "./limits";
import { runOptionsSchema } from "./options";
import { planInputSchema, planSchema } from "./plan";
import { compensationSchema, rerunOfSchema } from "./recovery";
import { waitingForSchema, waitingInfoSchema } from "./waiting";

export { type RunOptions, runOptionsSchema } from "./options";

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

export const stepStatusSchema = z.enum([
  "pending",
  "running",
  "waiting",
  "succeeded",
  "failed",
  "skipped",
  "cancelled",
]);
export type StepStatus = z.infer<typeof stepStatusSchema>;

export const executionLogEntrySchema = z
  .object({
    step_number: z.number().int(),
    tool_name: z.string(),
    tool_input: jsonObjectSchema,
    status: stepStatusSchema,
    success: z.boolean().nullable(),
    output: presentJsonSchema.nullable(),
    error: z.string().nullable(),
    attempts: z.number().int(),
    started_at: timestampSchema.nullable(),
    completed_at: timestampSchema.nullable(),
    duration_ms: z.number().int().nullable(),
    /** v1.1: present while the step waits (`status: "waiting"`). */
    waiting: waitingInfoSchema.optional(),
    /** v1.1: an `agent` step's tool calls. */
    calls: z.array(agentCallSchema).optional(),
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
    result: presentJsonSchema.nullable(),
    error: z.string().nullable(),
    created_at: timestampSchema,
    started_at: timestampSchema.nullable(),
    completed_at: timestampSchema.nullable(),
    /** v1.1: every step waiting now (`[]` when none). */
    waiting_for: z.array(waitingForSchema),
    /** v1.1: the compensation (saga) that undid succeeded steps, or null when none ran. */
    compensation: compensationSchema.nullable(),
    /** v1.1: the run this one reruns, or null. */
    rerun_of: rerunOfSchema.nullable(),
    /** v1.1: the options the run executes with (defaults applied). */
    options: runOptionsSchema,
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
  "step.waiting",
  "step.reused",
  "signal.received",
  "compensation.started",
  "compensation.step_dispatched",
  "compensation.step_started",
  "compensation.step_succeeded",
  "compensation.step_failed",
  "compensation.step_retry_scheduled",
  "compensation.step_skipped",
  "compensation.completed",
  "compensation.failed",
  "agent.turn_dispatched",
  "agent.turn_started",
  "agent.turn",
  "agent.turn_failed",
  "agent.turn_retry_scheduled",
  "agent.call_dispatched",
  "agent.call_started",
  "agent.call_succeeded",
  "agent.call_failed",
  "agent.call_retry_scheduled",
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
export const liveMessageSchema = z
  .discriminatedUnion("type", [
    z.object({ type: z.literal("snapshot"), run: runSchema, seq: z.number().int().min(0) }),
    z.object({ type: z.literal("event"), event: runEventSchema }),
    /** v1.1: text an agent or llm step's model is writing now; not an event (not stored, no seq). */
    z.object({
      type: z.literal("delta"),
      step_number: z.number().int(),
      text: z.string(),
      reset: z
        .literal(true)
        .optional()
        .meta({ description: "v1.1: this text starts a new try of the model's answer: drop the text shown before it" }),
    }),
  ])
  .meta({ id: "LiveMessage" });
export type LiveMessage = z.infer<typeof liveMessageSchema>;

/**
 * `{run_id}` in a path. Not validated here: a value that is not a run id (a UUID), whatever its
 * length, names no run and is answered like one that does not exist (404), never a 400.
 */
export const runIdParamSchema = z.object({
  run_id: z.string().meta({
    param: { name: "run_id", in: "path" },
    description: "A run id (a UUID). Any other value names no run: 404.",
    example: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
  }),
});

/** `?after=N`: the sequence number after which events are wanted (events and live). */
export const afterParamSchema = queryInt(
  `after must be an integer between 0 and ${Number.MAX_SAFE_INTEGER}`,
  0,
  Number.MAX_SAFE_INTEGER,
);

export const eventsQuerySchema = z.object({
  after: afterParamSchema.default(0).meta({ default: 0 }),
  limit: queryIntOr(
    `limit must be an integer between 1 and ${LIMITS.maxEventsPage}`,
    1,
    LIMITS.maxEventsPage,
    LIMITS.maxEventsPage,
  ),
});
