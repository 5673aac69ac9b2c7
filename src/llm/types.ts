import type { Json } from "../contracts/common";

/** Largest prompt text sent and response body read: a cap on what one call can cost. */
export const MAX_PROMPT_CHARS = 32_000;
export const MAX_RESPONSE_BYTES = 256 * 1024;

/** A tool call a model asked for (provider-neutral). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: Json;
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

/** Tokens a call cost, as the provider reported them (0 when it did not). */
export const tokensOf = (r: Pick<ChatResult, "usage">): number =>
  (r.usage?.prompt_tokens ?? 0) + (r.usage?.completion_tokens ?? 0);
