import { z } from "zod";
import { jsonObjectSchema } from "./common";
import { LIMITS } from "./limits";

export const toolNameSchema = z.string().min(1).max(64);

/** Backoff overrides; whatever is left out comes from the run's options, then the tool's policy. */
export const backoffOverrideSchema = z
  .object({
    base_delay_ms: z.number().int().min(0).max(LIMITS.maxBackoffMs).optional(),
    factor: z.number().min(1).max(10).optional(),
    max_delay_ms: z.number().int().min(0).max(LIMITS.maxBackoffMs).optional(),
  })
  .strict()
  .meta({ id: "BackoffOverride" });
export type BackoffOverride = z.infer<typeof backoffOverrideSchema>;

/** Per-step overrides of the run's retry and timeout options. */
const stepPolicyFields = {
  max_attempts: z.number().int().min(1).max(LIMITS.maxAttempts).optional(),
  timeout_ms: z.number().int().min(LIMITS.minStepTimeoutMs).max(LIMITS.maxStepTimeoutMs).optional(),
  retry: backoffOverrideSchema.optional(),
};

/** One step as a client (or a planner) writes it. */
export const stepInputSchema = z
  .object({
    step_number: z.number().int().min(1).max(LIMITS.maxStepNumber),
    tool_name: toolNameSchema,
    tool_input: jsonObjectSchema,
    reasoning: z.string().max(LIMITS.maxReasoningChars).optional(),
    depends_on: z.array(z.number().int().min(1).max(LIMITS.maxStepNumber)).max(LIMITS.maxSteps).optional(),
    ...stepPolicyFields,
  })
  .strict()
  .meta({ id: "StepInput" });
export type StepInput = z.infer<typeof stepInputSchema>;

export const planInputSchema = z
  .object({
    steps: z.array(stepInputSchema).min(1).max(LIMITS.maxSteps),
    final_goal: z.string().max(LIMITS.maxPromptChars).optional(),
  })
  .strict()
  .meta({ id: "PlanInput" });
export type PlanInput = z.infer<typeof planInputSchema>;

export const plannerKindSchema = z.enum(["rules", "llm", "explicit"]);
export type PlannerKind = z.infer<typeof plannerKindSchema>;

/** A validated step: `depends_on` holds every dependency the DAG enforces. */
export const planStepSchema = z
  .object({
    step_number: z.number().int(),
    tool_name: z.string(),
    tool_input: jsonObjectSchema,
    reasoning: z.string(),
    depends_on: z.array(z.number().int()),
    ...stepPolicyFields,
  })
  .meta({ id: "PlanStep" });
export type PlanStep = z.infer<typeof planStepSchema>;

export const planSchema = z
  .object({
    plan_id: z.string(),
    planner: plannerKindSchema,
    final_goal: z.string(),
    steps: z.array(planStepSchema),
  })
  .meta({ id: "Plan" });
export type Plan = z.infer<typeof planSchema>;
