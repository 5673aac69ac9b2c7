import { z } from "zod";
import { backoffOverrideSchema } from "./backoff";
import { LIMITS } from "./limits";

/** What happens when a step fails for good (docs/api.md; `compensate` is v1.1). */
export const onFailureSchema = z.enum(["fail_fast", "continue", "compensate"]);
export type OnFailure = z.infer<typeof onFailureSchema>;

const optionFields = {
  max_parallel: z.number().int().min(1).max(LIMITS.maxParallel),
  step_timeout_ms: z.number().int().min(LIMITS.minStepTimeoutMs).max(LIMITS.maxStepTimeoutMs),
  /** Left out: each tool's own `retry.max_attempts` (3 for the built-in tools). */
  max_attempts: z.number().int().min(1).max(LIMITS.maxAttempts).optional(),
  on_failure: onFailureSchema,
  retry: backoffOverrideSchema.optional(),
};

export const runOptionsSchema = z
  .object({
    ...optionFields,
    max_parallel: optionFields.max_parallel.default(8),
    step_timeout_ms: optionFields.step_timeout_ms.default(30_000),
    on_failure: optionFields.on_failure.default("fail_fast"),
  })
  .strict()
  .meta({ id: "RunOptions" });
export type RunOptions = z.infer<typeof runOptionsSchema>;

/** Options of a rerun: each one given replaces the original run's, the rest are kept. */
export const runOptionsOverrideSchema = z
  .object({
    max_parallel: optionFields.max_parallel.optional(),
    step_timeout_ms: optionFields.step_timeout_ms.optional(),
    max_attempts: optionFields.max_attempts,
    on_failure: optionFields.on_failure.optional(),
    retry: optionFields.retry,
  })
  .strict()
  .meta({ id: "RunOptionsOverride" });
export type RunOptionsOverride = z.infer<typeof runOptionsOverrideSchema>;
