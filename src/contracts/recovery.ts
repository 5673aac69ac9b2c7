import { z } from "zod";
import { jsonObjectSchema, presentJsonSchema } from "./common";
import { LIMITS } from "./limits";
import { runOptionsOverrideSchema } from "./options";

/** `StepInput.compensate`: the step that undoes a step (docs/api.md, "Recovery"). */
export const compensateSpecSchema = z
  .object({ tool_name: z.string().min(1).max(64), tool_input: jsonObjectSchema })
  .strict()
  .meta({ id: "Compensate" });
export type CompensateSpec = z.infer<typeof compensateSpecSchema>;

export const compensationStepStatusSchema = z.enum(["pending", "running", "succeeded", "failed", "skipped"]);

export const compensationStepSchema = z
  .object({
    step_number: z.number().int().meta({ description: "The step being undone" }),
    call: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: "v1.1: the agent step's tool call being undone (absent: the step itself)" }),
    tool_name: z.string(),
    tool_input: jsonObjectSchema,
    status: compensationStepStatusSchema,
    output: presentJsonSchema.nullable(),
    error: z.string().nullable(),
    attempts: z.number().int(),
  })
  .meta({ id: "CompensationStep" });
export type CompensationStep = z.infer<typeof compensationStepSchema>;

export const compensationStatusSchema = z.enum(["running", "completed", "failed"]);

export const compensationSchema = z
  .object({ status: compensationStatusSchema, steps: z.array(compensationStepSchema) })
  .meta({ id: "Compensation" });
export type Compensation = z.infer<typeof compensationSchema>;

export const rerunOfSchema = z
  .object({ run_id: z.string(), from_step: z.number().int().nullable() })
  .meta({ id: "RerunOf" });
export type RerunOf = z.infer<typeof rerunOfSchema>;

export const cancelBodySchema = z
  .object({
    compensate: z.boolean().optional(),
    reason: z.string().max(LIMITS.maxMessageChars).optional(),
  })
  .strict()
  .meta({ id: "Cancel" });
export type CancelBody = z.infer<typeof cancelBodySchema>;

export const rerunBodySchema = z
  .object({
    from_step: z.number().int().min(1).max(LIMITS.maxStepNumber).optional(),
    tool_inputs: z
      .record(z.string().regex(/^\d{1,5}$/, "tool_inputs keys must be step numbers"), jsonObjectSchema)
      .optional(),
    options: runOptionsOverrideSchema.optional(),
  })
  .strict()
  .meta({ id: "Rerun" });
export type RerunBody = z.infer<typeof rerunBodySchema>;
