import { backoffDelay } from "../run/backoff";
import type { LlmProvider } from "./config";

/** Largest prompt text sent and response body read: a cap on what one call can cost. */
export const MAX_PROMPT_CHARS = 32_000;
export const MAX_RESPONSE_BYTES = 256 * 1024;
/** Attempts per call: the first and two retries, for 429, 5xx, network errors and timeouts. */
const MAX_TRIES = 3;
const RETRY = { max_attempts: MAX_TRIES, base_delay_ms: 250, factor: 2, max_delay_ms: 2_000 };

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatResult {
  text: string;
  model: string;
  latency_ms: number;
  tries: number;
  usage: { prompt_tokens: number | null; completion_tokens: number | null } | null;
}

export type LlmFailure = "timeout" | "http_status" | "network" | "too_large" | "bad_response";

/** A provider call that failed, with why (recorded in the run's events on a fallback). */
export class LlmError extends Error {
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readCapped(res: Response): Promise<string> {
  const text = await res.text();
  if (text.length > MAX_RESPONSE_BYTES)
    throw new LlmError("too_large", `Provider answer over ${MAX_RESPONSE_BYTES} bytes`, false);
  return text;
}

async function openAiOnce(
  p: Extract<LlmProvider, { kind: "openai" }>,
  messages: ChatMessage[],
  opts: { maxTokens: number; jsonSchema?: object },
): Promise<Omit<ChatResult, "latency_ms" | "tries">> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), p.timeoutMs);
  let res: Response;
  try {
    res = await fetch(`${p.baseUrl}/chat/completions`, {
      method: "POST",
      signal: controller.signal,
      headers: { "Content-Type": "application/json", ...(p.apiKey ? { Authorization: `Bearer ${p.apiKey}` } : {}) },
      body: JSON.stringify({
        model: p.model,
        messages,
        max_tokens: opts.maxTokens,
        temperature: 0,
        ...(opts.jsonSchema
          ? { response_format: { type: "json_schema", json_schema: { name: "crane_plan", schema: opts.jsonSchema } } }
          : {}),
      }),
    });
  } catch (err) {
    if (controller.signal.aborted)
      throw new LlmError("timeout", `Provider did not answer within ${p.timeoutMs} ms`, true);
    throw new LlmError("network", `Provider unreachable: ${err instanceof Error ? err.message : String(err)}`, true);
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok) {
    await res.body?.cancel();
    const retryable = res.status === 429 || res.status >= 500;
    throw new LlmError("http_status", `Provider answered HTTP ${res.status}`, retryable, res.status);
  }
  const body = await readCapped(res);
  let parsed: { model?: string; choices?: { message?: { content?: unknown } }[]; usage?: Record<string, unknown> };
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    if (err instanceof SyntaxError) throw new LlmError("bad_response", "Provider answer is not JSON", false);
    throw err;
  }
  const content = parsed.choices?.[0]?.message?.content;
  if (typeof content !== "string") throw new LlmError("bad_response", "Provider answer has no message content", false);
  const num = (v: unknown) => (typeof v === "number" ? v : null);
  return {
    text: content,
    model: parsed.model ?? p.model,
    usage: parsed.usage
      ? { prompt_tokens: num(parsed.usage.prompt_tokens), completion_tokens: num(parsed.usage.completion_tokens) }
      : null,
  };
}

async function workersAiOnce(
  p: Extract<LlmProvider, { kind: "workers-ai" }>,
  messages: ChatMessage[],
  opts: { maxTokens: number; jsonSchema?: object },
): Promise<Omit<ChatResult, "latency_ms" | "tries">> {
  const input = {
    messages,
    max_tokens: opts.maxTokens,
    ...(opts.jsonSchema ? { response_format: { type: "json_schema", json_schema: opts.jsonSchema } } : {}),
  };
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new LlmError("timeout", `Workers AI did not answer within ${p.timeoutMs} ms`, true)),
      p.timeoutMs,
    );
  });
  let out: unknown;
  try {
    out = await Promise.race([(p.ai.run as (m: string, i: unknown) => Promise<unknown>)(p.model, input), timeout]);
  } catch (err) {
    if (err instanceof LlmError) throw err;
    throw new LlmError("network", `Workers AI failed: ${err instanceof Error ? err.message : String(err)}`, true);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
  const r = out as { response?: unknown; usage?: { prompt_tokens?: number; completion_tokens?: number } };
  const text =
    typeof r.response === "string" ? r.response : r.response !== undefined ? JSON.stringify(r.response) : null;
  if (text === null) throw new LlmError("bad_response", "Workers AI answer has no response", false);
  return {
    text,
    model: p.model,
    usage: r.usage
      ? { prompt_tokens: r.usage.prompt_tokens ?? null, completion_tokens: r.usage.completion_tokens ?? null }
      : null,
  };
}

/**
 * One chat completion, with a per-try timeout and up to two jittered retries of failures a
 * retry can fix (429, 5xx, network, timeout). Prompts are capped at `MAX_PROMPT_CHARS`.
 */
export async function chat(
  provider: LlmProvider,
  messages: ChatMessage[],
  opts: { maxTokens: number; jsonSchema?: object },
): Promise<ChatResult> {
  const size = messages.reduce((n, m) => n + m.content.length, 0);
  if (size > MAX_PROMPT_CHARS)
    throw new LlmError("too_large", `Prompt of ${size} characters is over ${MAX_PROMPT_CHARS}`, false);
  const started = Date.now();
  for (let tries = 1; ; tries++) {
    try {
      const result =
        provider.kind === "openai"
          ? await openAiOnce(provider, messages, opts)
          : await workersAiOnce(provider, messages, opts);
      return { ...result, latency_ms: Date.now() - started, tries };
    } catch (err) {
      if (!(err instanceof LlmError) || !err.retryable || tries >= MAX_TRIES) throw err;
      await sleep(Math.max(50, backoffDelay(RETRY, tries, Math.random)));
    }
  }
}
