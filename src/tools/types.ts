import type { z } from "zod";
import type { Json } from "../contracts/common";
import type { CompensateSpec } from "../contracts/recovery";
import type { RetryPolicy, ToolEffects } from "../contracts/tool";
import type { Env } from "../env";
import type { FailureInfo } from "./errors";

/** What a tool gets besides its input. */
export interface ToolContext {
  /** Aborted when the attempt's timeout passes; long-running tools must honour it. */
  signal: AbortSignal;
  /**
   * The same for every attempt and redelivery of one piece of work: `run_id:step_number` for a
   * step, `run_id:step_number:compensate` for its compensation, `run_id:step_number:<call>` for an
   * agent's tool call. A tool with side effects must act once per key.
   */
  idempotencyKey: string;
  tenant: string;
  runId: string;
  stepNumber: number;
  attempt: number;
  env: Env;
  /** Text the tool is producing now (an LLM streaming its answer), for live watchers; best effort. */
  onDelta?: (text: string, reset?: boolean) => void;
}

/**
 * Work the run's coordinator carries out itself instead of a tool call: a durable timer, a
 * human decision, an external signal (no consumer, isolate or socket held while waiting), or an
 * agent's loop of model turns and tool calls.
 */
export type ControlKind = "timer" | "approval" | "signal" | "agent";

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
  /**
   * Nothing happens outside the output — no store written, no external call, nothing spent — so a
   * stale or duplicate attempt may run (its result is ignored). Its queue message carries its
   * grant and the consumer runs it while the coordinator records the start. Pure tools
   * (`executeInline`) are side-effect free too.
   */
  sideEffectFree?: true;
  /** Set for the tools the coordinator carries out itself (`execute` is never called for them). */
  control?: ControlKind;
  /** Whether the tool needs the LLM provider (a plan using it is refused without one). */
  needsLlm?: boolean;
  /**
   * How to undo one successful call, for runs that compensate (saga): the step to run, or null
   * when this call needs no undoing. Pure: a function of the call's input and output.
   */
  compensate?(input: z.infer<S>, output: Json): CompensateSpec | null;
  /**
   * Checks that the schema cannot express, made when a plan is validated (a time in the future,
   * names of other tools): problems as `{ path, message }`, path within `tool_input`. `now` is null
   * when times are not checked (a rerun of a plan whose times have passed: they wake at once).
   */
  check?(
    input: z.infer<S>,
    ctx: { now: number | null; tools: ReadonlyMap<string, Tool> },
  ): { path: string; message: string }[];
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

/** What the coordinator gives a consumer (or runs inline) for one attempt of one task. */
export interface AttemptGrant {
  tool_name: string;
  input: Record<string, Json>;
  timeout_ms: number;
  idempotency_key: string;
  trace_id: string | null;
  /** For an agent's model turn: what the model needs (goal, tools, transcript, budgets). */
  turn?: Json;
}

export type AttemptOutcome = { ok: true; output: Json } | { ok: false; error: FailureInfo };

/** A pure tool: its step may run inside the coordinator, or on its queue message's grant with one report. */
export const isPure = (tool: Tool | undefined): boolean => tool?.executeInline !== undefined;

/** A tool whose stale or duplicate attempt changes nothing: its queue message carries its grant. */
export const runsOnGrant = (tool: Tool | undefined): boolean => isPure(tool) || tool?.sideEffectFree === true;
