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
  /**
   * Called with each piece of text as the model writes it (the provider streams when set).
   * `reset`: the first piece of a try: what earlier tries wrote is not the answer.
   */
  onDelta?: (text: string, reset?: boolean) => void;
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

export type LlmFailure =
  | "timeout"
  | "http_status"
  | "network"
  | "too_large"
  | "bad_response"
  | "provider_error"
  | "refused"
  | "budget_exhausted";

/** A provider call that failed, with why and what it took (recorded in the run's events). */
export class LlmError extends Error {
  /** Set by the retry loop: time spent over every try, and how many tries were made. */
  latency_ms = 0;
  tries = 1;
  /** How long the provider asked to be left alone (`Retry-After` of a 429 or 503), or null. */
  retryAfterMs: number | null = null;
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

/** About how many characters make a token: what a call without reported usage is charged, and what a call holds. */
export const CHARS_PER_TOKEN = 4;

/**
 * What a call is charged: the provider's counts (`usageOf`), and where it reported none (no
 * `usage`, as some gateways and streams without `include_usage` do, or a count that is not a
 * number) an estimate of one token per 4 characters — of the request for the prompt, of the text
 * and tool calls for the completion, at least one — so that `max_tokens` and the tenant's daily
 * budget still bind. Estimates stay within the same limits as reported counts.
 */
export function settledUsage(
  reported: ChatResult["usage"],
  limits: UsageLimits,
  text: string,
  toolCalls: readonly ToolCall[],
): NonNullable<ChatResult["usage"]> {
  const written = text.length + (toolCalls.length > 0 ? JSON.stringify(toolCalls).length : 0);
  return {
    prompt_tokens: reported?.prompt_tokens ?? Math.min(MAX_PROMPT_TOKENS, Math.ceil(limits.prompt / CHARS_PER_TOKEN)),
    completion_tokens:
      reported?.completion_tokens ??
      Math.min(Math.max(0, Math.floor(limits.completion)), Math.max(1, Math.ceil(written / CHARS_PER_TOKEN))),
  };
}

/** Longest `Retry-After` honoured, in ms (RFC 9110: seconds, or an HTTP date). */
export const MAX_RETRY_AFTER_MS = 60_000;

/** A `Retry-After` header in ms (0 to `MAX_RETRY_AFTER_MS`), or null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (header === null) return null;
  const value = header.trim();
  const ms = /^\d{1,10}$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  if (Number.isNaN(ms)) return null;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}
