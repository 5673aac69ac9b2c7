import type { Json } from "../contracts/common";

/** Largest prompt text sent and response body read: a cap on what one call can cost. */
export const MAX_PROMPT_CHARS = 32_000;
export const MAX_RESPONSE_BYTES = 256 * 1024;

/** A tool call a model asked for (provider-neutral). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: Json;
  /** Why the arguments were refused (too large, too deep, not JSON); `arguments` is then `{}`. */
  invalid?: string;
}

/** A message of a conversation, provider-neutral; each provider module maps it to its wire form. */
export type ChatMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string | null; tool_calls?: ToolCall[] }
  | { role: "tool"; tool_call_id: string; content: string };

/** A function the model may call: its name, what it does, and its parameters as JSON Schema. */
export interface ToolSpec {
  name: string;
  description: string;
  parameters: Json;
}

export interface ChatOptions {
  maxTokens: number;
  /** Ask for JSON matching this schema (structured output). */
  jsonSchema?: object;
  tools?: ToolSpec[];
  /** Called with each piece of text as the model writes it (the provider streams when set). */
  onDelta?: (text: string) => void;
}

export interface ChatResult {
  text: string;
  toolCalls: ToolCall[];
  model: string;
  latency_ms: number;
  tries: number;
  usage: { prompt_tokens: number | null; completion_tokens: number | null } | null;
}

/** What one provider call returns before the retry loop adds latency and tries. */
export type ChatOnce = Omit<ChatResult, "latency_ms" | "tries">;

export type LlmFailure = "timeout" | "http_status" | "network" | "too_large" | "bad_response" | "budget_exhausted";

/** A provider call that failed, with why and what it took (recorded in the run's events). */
export class LlmError extends Error {
  /** Set by the retry loop: time spent over every try, and how many tries were made. */
  latency_ms = 0;
  tries = 1;
  constructor(
    readonly reason: LlmFailure,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = "LlmError";
  }
}

/**
 * Most prompt tokens one call is ever charged: a prompt is at most `MAX_PROMPT_CHARS` characters
 * plus the tools' schemas. A provider that reports more is wrong, and a tenant's daily budget
 * must not be spent by its error.
 */
export const MAX_PROMPT_TOKENS = 200_000;

/**
 * A token count as a provider reported it, made one Crane can charge: null when it is not a number,
 * else an integer from 0 to `cap` (a negative count would let a call spend less than nothing, and
 * `Infinity` or `1e308` would spend a tenant's day at once and be stored as `null` by JSON).
 */
export function tokenCount(v: unknown, cap: number): number | null {
  if (typeof v !== "number" || Number.isNaN(v)) return null;
  return Math.min(Math.max(0, Math.floor(cap)), Math.max(0, Math.ceil(v)));
}

/** The most a call can honestly have cost: its request's size in bytes, and the `max_tokens` it asked for. */
export interface UsageLimits {
  prompt: number;
  completion: number;
}

/**
 * A call's usage from the provider's answer, each count clamped (`tokenCount`): prompt tokens to
 * the request's bytes (no tokenizer makes more tokens than bytes) and `MAX_PROMPT_TOKENS`,
 * completion tokens to the `max_tokens` the call asked for (the provider was told to write no more).
 */
export function usageOf(raw: unknown, limits: UsageLimits): ChatResult["usage"] {
  if (raw === null || typeof raw !== "object") return null;
  const u = raw as Record<string, unknown>;
  return {
    prompt_tokens: tokenCount(u.prompt_tokens, Math.min(limits.prompt, MAX_PROMPT_TOKENS)),
    completion_tokens: tokenCount(u.completion_tokens, limits.completion),
  };
}

/** Tokens a call cost, as the provider reported them (0 when it did not), never negative nor unbounded. */
export const tokensOf = (r: Pick<ChatResult, "usage">): number =>
  (tokenCount(r.usage?.prompt_tokens, MAX_PROMPT_TOKENS) ?? 0) +
  (tokenCount(r.usage?.completion_tokens, MAX_PROMPT_TOKENS) ?? 0);
