import { z } from "zod";
import { jsonObjectSchema } from "./common";

export const toolEffectsSchema = z
  .object({
    resource: z.string().nullable(),
    mode: z.enum(["none", "read", "write"]),
  })
  .meta({ id: "ToolEffects" });
export type ToolEffects = z.infer<typeof toolEffectsSchema>;

export const retryPolicySchema = z
  .object({
    max_attempts: z.number().int().min(1),
    base_delay_ms: z.number().int().min(0),
    factor: z.number().min(1),
    max_delay_ms: z.number().int().min(0),
  })
  .meta({ id: "RetryPolicy" });
export type RetryPolicy = z.infer<typeof retryPolicySchema>;

export const toolDescriptorSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    input_schema: jsonObjectSchema,
    effects: toolEffectsSchema,
    retry: retryPolicySchema,
    breaker: z
      .object({
        state: z.enum(["closed", "open", "half_open"]),
        failures: z.number().int().meta({ description: "Failures within the breaker's window" }),
        opened_at: z.string().nullable(),
      })
      .meta({ id: "Breaker", description: "The tool's circuit breaker, shared by every run" }),
  })
  .meta({ id: "Tool" });
export type ToolDescriptor = z.infer<typeof toolDescriptorSchema>;

/** A queue message: one attempt of one step. Parsed with zod at the consumer. */
export const stepMessageSchema = z.object({
  run_id: z.string().min(1).max(64),
  tenant: z.string().min(1).max(64),
  step_number: z.number().int().min(1),
  attempt: z.number().int().min(1),
  trace_id: z.string().max(64).optional(),
  /**
   * Which task of the step: absent for the step itself, `compensate`, `compensate:N` (undoing
   * agent call N), `turn:N` or `call:N` (v1.1).
   */
  task: z
    .string()
    .regex(/^(compensate|compensate:\d{1,4}|turn:\d{1,4}|call:\d{1,4})$/)
    .optional(),
  /**
   * A pure tool's attempt, granted at dispatch with its resolved input: the consumer runs it
   * without asking and reports it once (`reportAttempts`, `ran`). Absent: the consumer asks
   * (`startAttempts`).
   */
  grant: z
    .object({
      tool_name: z.string().min(1).max(64),
      input: jsonObjectSchema,
      timeout_ms: z.number().int().min(1),
      idempotency_key: z.string().min(1).max(256),
    })
    .optional(),
  /** How often the consumer put this message back for fairness (not a delivery failure). */
  deferred: z.number().int().min(0).max(1000).optional(),
});
export type StepMessage = z.infer<typeof stepMessageSchema>;

/** A request to copy a run's current snapshot to D1; the consumer pulls the snapshot itself. */
export const archiveMessageSchema = z.object({
  run_id: z.string().min(1).max(64),
  tenant: z.string().min(1).max(64),
  seq: z.number().int().min(1),
  /**
   * The run's snapshot itself when it fits in a queue message (nearly always), saving the consumer
   * a call to the coordinator; absent for a large run, whose consumer asks for it.
   */
  snapshot: z.unknown().optional(),
});
export type ArchiveMessage = z.infer<typeof archiveMessageSchema>;

export const healthSchema = z
  .object({
    status: z.enum(["healthy", "unhealthy"]),
    checks: z.record(z.string(), z.object({ status: z.enum(["ok", "error"]), detail: z.string().optional() })),
  })
  .meta({ id: "Health" });
export type Health = z.infer<typeof healthSchema>;
