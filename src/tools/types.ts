import type { z } from "zod";
import type { Json } from "../contracts/common";
import type { RetryPolicy, ToolEffects } from "../contracts/tool";
import type { Env } from "../env";

/** What a tool gets besides its input. */
export interface ToolContext {
  /** Aborted when the attempt's timeout passes; long-running tools must honour it. */
  signal: AbortSignal;
  /** `run_id:step_number` — the same for every attempt and redelivery of a step. */
  idempotencyKey: string;
  tenant: string;
  runId: string;
  stepNumber: number;
  attempt: number;
  env: Env;
}

export interface Tool<S extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  inputSchema: S;
  /** Which shared resource the tool touches; writers to one resource are ordered by step number. */
  effects: ToolEffects;
  /** The access mode for one input when it is narrower than `effects.mode` (a read of a store). */
  modeFor?: (input: Record<string, unknown>) => ToolEffects["mode"];
  retry: RetryPolicy;
  execute(input: z.infer<S>, ctx: ToolContext): Promise<Json>;
  /**
   * For pure, synchronous, sub-millisecond tools: the same computation without I/O. The
   * coordinator may run such a step itself instead of sending it through the queue
   * (`INLINE_PURE_TOOLS`); the outcome is recorded the same way.
   */
  executeInline?(input: z.infer<S>): Json;
}

/** Retry policy for tools that do not declare their own. */
export const DEFAULT_RETRY: RetryPolicy = {
  max_attempts: 3,
  base_delay_ms: 200,
  factor: 2,
  max_delay_ms: 10_000,
};

/** Declares a tool with its input type inferred from its schema. */
export const defineTool = <S extends z.ZodType>(tool: Tool<S>): Tool<S> => tool;
