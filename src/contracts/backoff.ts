import { z } from "zod";
import { LIMITS } from "./limits";

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
