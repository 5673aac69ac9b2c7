import { z } from "zod";
import { backoffOverrideSchema } from "./backoff";
import { jsonObjectSchema } from "./common";
import { LIMITS } from "./limits";
import { compensateSpecSchema } from "./recovery";

export { type BackoffOverride, backoffOverrideSchema } from "./backoff";

export const toolNameSchema = z.string().min(1).max(64);

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
    /** v1.1: how to undo this step when the run compensates (else the tool's own compensation). */
    compensate: compensateSpecSchema.optional(),
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
    compensate: compensateSpecSchema.optional(),
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
