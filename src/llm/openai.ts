import type { Json } from "../contracts/common";
import { checkArguments } from "./arguments";
import type { LlmProvider } from "./config";
import {
  type ChatMessage,
  type ChatOnce,
  type ChatOptions,
  LlmError,
  MAX_RESPONSE_BYTES,
  retryAfterMs,
  settledUsage,
  type ToolCall,
  type UsageLimits,
  usageOf,
} from "./types";

type OpenAi = Extract<LlmProvider, { kind: "openai" }>;

function wireMessage(m: ChatMessage): Json {
  if (m.role === "assistant") {
    return {
      role: "assistant",
      content: m.content,
      ...(m.tool_calls?.length
        ? {
            tool_calls: m.tool_calls.map((c) => ({
              id: c.id,
              type: "function",
              function: { name: c.name, arguments: JSON.stringify(c.arguments) },
            })),
          }
        : {}),
    };
  }
  if (m.role === "tool") return { role: "tool", tool_call_id: m.tool_call_id, content: m.content };
  return { role: m.role, content: m.content };
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** The first of an answer's `choices`, when it is an object. */
function firstChoice(choices: unknown): Record<string, unknown> | null {
  const first: unknown = Array.isArray(choices) ? choices[0] : undefined;
  return isRecord(first) ? first : null;
}

/**
 * An `error` in an answer or a stream chunk (a provider that fails after its 200): a retryable
 * failure. Only an error that says something counts — an object with fields, or a non-empty
 * string; `false`, `0`, `""` or `{}` beside a valid answer are not errors.
 */
function providerError(error: unknown): void {
  const says = (isRecord(error) && Object.keys(error).length > 0) || (typeof error === "string" && error.length > 0);
  if (!says) return;
  const message =
    typeof error === "string"
      ? error.slice(0, 200)
      : typeof error.message === "string"
        ? error.message.slice(0, 200)
        : "unknown";
  throw new LlmError("provider_error", `Provider reported an error: ${message}`, true);
}

/**
 * An answer must say something: text or tool calls. A refusal by the provider's content filter
 * (`finish_reason: "content_filter"`) or an empty answer fails the call instead of passing as an
 * empty success; neither is retried (the same request would get the same answer).
 */
function checkAnswer(text: string, toolCalls: ToolCall[], finish: string | null): void {
  if (finish === "content_filter") {
    throw new LlmError("refused", "Provider refused to answer (finish_reason content_filter)", false);
  }
  if (text.trim().length === 0 && toolCalls.length === 0) {
    throw new LlmError("bad_response", "Provider answer is empty: no text and no tool calls", false);
  }
}

/** A provider's tool call, its arguments checked (src/llm/arguments.ts). */
const toolCall = (id: string, name: unknown, args: unknown): ToolCall => ({
  id,
  name: typeof name === "string" ? name : "",
  ...checkArguments(args),
});

/** Reads a streamed (server-sent events) completion: text as it comes, tool calls assembled by index. */
async function readStream(
  res: Response,
  model: string,
  limits: UsageLimits,
  onDelta: (text: string) => void,
): Promise<ChatOnce> {
  const reader = res.body?.pipeThrough(new TextDecoderStream()).getReader();
  if (!reader) throw new LlmError("bad_response", "Provider stream has no body", false);
  let buffer = "";
  let text = "";
  let bytes = 0;
  let usage: ChatOnce["usage"] = null;
  let finish: string | null = null;
  const calls = new Map<number, { id: string; name: string; args: string }>();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.length;
    if (bytes > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      throw new LlmError("too_large", `Provider answer over ${MAX_RESPONSE_BYTES} bytes`, false);
    }
    buffer += value;
    let nl = buffer.indexOf("\n");
    while (nl >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf("\n");
      if (!line.startsWith("data:")) continue;
      const payload = line.slice(5).trim();
      if (payload === "[DONE]") continue;
      let chunk: unknown;
      try {
        chunk = JSON.parse(payload);
      } catch (err) {
        if (err instanceof SyntaxError) throw new LlmError("bad_response", "Provider stream chunk is not JSON", false);
        throw err;
      }
      if (!isRecord(chunk)) throw new LlmError("bad_response", "Provider stream chunk is not a JSON object", false);
      providerError(chunk.error);
      if (typeof chunk.model === "string" && chunk.model) model = chunk.model;
      if (chunk.usage) usage = usageOf(chunk.usage, limits);
      const choice = firstChoice(chunk.choices);
      if (typeof choice?.finish_reason === "string") finish = choice.finish_reason;
      const delta = isRecord(choice?.delta) ? choice.delta : {};
      if (typeof delta.content === "string" && delta.content.length > 0) {
        text += delta.content;
        onDelta(delta.content);
      }
      if (delta.tool_calls !== undefined && delta.tool_calls !== null && !Array.isArray(delta.tool_calls)) {
        throw new LlmError("bad_response", "Provider stream's tool_calls is not an array", false);
      }
      for (const tc of (delta.tool_calls ?? []) as unknown[]) {
        if (!isRecord(tc))
          throw new LlmError("bad_response", "Provider stream has a tool call that is not an object", false);
        const i = typeof tc.index === "number" && Number.isSafeInteger(tc.index) ? tc.index : 0;
        const call = calls.get(i) ?? { id: "", name: "", args: "" };
        const fn = isRecord(tc.function) ? tc.function : {};
        if (typeof tc.id === "string" && tc.id) call.id = tc.id;
        if (typeof fn.name === "string") call.name += fn.name;
        if (typeof fn.arguments === "string") call.args += fn.arguments;
        calls.set(i, call);
      }
    }
  }
  const toolCalls: ToolCall[] = [...calls.entries()]
    .sort(([a], [b]) => a - b)
    .map(([i, c]) => toolCall(c.id || `call_${i}`, c.name, c.args));
  checkAnswer(text, toolCalls, finish);
  return { text, toolCalls, model, usage: settledUsage(usage, limits, text, toolCalls) };
}

/** One chat completion from an OpenAI-compatible endpoint (OpenAI, AI Gateway, vLLM, Ollama, …). */
export async function openAiOnce(p: OpenAi, messages: ChatMessage[], opts: ChatOptions): Promise<ChatOnce> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), p.timeoutMs);
  const stream = opts.onDelta !== undefined;
  const request = JSON.stringify({
    model: p.model,
    messages: messages.map(wireMessage),
    max_tokens: opts.maxTokens,
    temperature: 0,
    ...(opts.jsonSchema
      ? { response_format: { type: "json_schema", json_schema: { name: "crane_plan", schema: opts.jsonSchema } } }
      : {}),
    ...(opts.tools?.length
      ? { tools: opts.tools.map((t) => ({ type: "function", function: t })), tool_choice: "auto" }
      : {}),
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
  // What the provider may bill as prompt tokens: no tokenizer makes more tokens than the bytes it reads.
  const limits = { prompt: new TextEncoder().encode(request).length, completion: opts.maxTokens };
  try {
    let res: Response;
    try {
      res = await fetch(`${p.baseUrl}/chat/completions`, {
        method: "POST",
        signal: controller.signal,
        headers: { "Content-Type": "application/json", ...(p.apiKey ? { Authorization: `Bearer ${p.apiKey}` } : {}) },
        body: request,
      });
    } catch (err) {
      if (controller.signal.aborted)
        throw new LlmError("timeout", `Provider did not answer within ${p.timeoutMs} ms`, true);
      throw new LlmError("network", `Provider unreachable: ${err instanceof Error ? err.message : String(err)}`, true);
    }
    if (!res.ok) {
      await res.body?.cancel();
      const retryable = res.status === 429 || res.status >= 500;
      const error = new LlmError("http_status", `Provider answered HTTP ${res.status}`, retryable, res.status);
      error.retryAfterMs = retryAfterMs(res.headers.get("Retry-After"));
      throw error;
    }
    if (stream && (res.headers.get("Content-Type") ?? "").includes("text/event-stream")) {
      return await readStream(res, p.model, limits, opts.onDelta as (text: string) => void);
    }
    const body = await res.text();
    if (body.length > MAX_RESPONSE_BYTES)
      throw new LlmError("too_large", `Provider answer over ${MAX_RESPONSE_BYTES} bytes`, false);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      if (err instanceof SyntaxError) throw new LlmError("bad_response", "Provider answer is not JSON", false);
      throw err;
    }
    if (!isRecord(parsed)) throw new LlmError("bad_response", "Provider answer is not a JSON object", false);
    providerError(parsed.error);
    const choice = firstChoice(parsed.choices);
    const message = isRecord(choice?.message) ? choice.message : {};
    const asked = Array.isArray(message.tool_calls) ? (message.tool_calls as unknown[]) : [];
    const toolCalls: ToolCall[] = asked.map((c, i) => {
      const call = isRecord(c) ? c : {};
      const fn = isRecord(call.function) ? call.function : {};
      return toolCall(typeof call.id === "string" ? call.id : `call_${i}`, fn.name, fn.arguments ?? "");
    });
    if (typeof message.content !== "string" && toolCalls.length === 0) {
      throw new LlmError("bad_response", "Provider answer has no message content", false);
    }
    const text = typeof message.content === "string" ? message.content : "";
    checkAnswer(text, toolCalls, typeof choice?.finish_reason === "string" ? choice.finish_reason : null);
    if (text && opts.onDelta) opts.onDelta(text);
    return {
      text,
      toolCalls,
      model: typeof parsed.model === "string" && parsed.model ? parsed.model : p.model,
      usage: settledUsage(usageOf(parsed.usage, limits), limits, text, toolCalls),
    };
  } catch (err) {
    if (controller.signal.aborted && !(err instanceof LlmError && err.reason === "timeout")) {
      throw new LlmError("timeout", `Provider did not answer within ${p.timeoutMs} ms`, true);
    }
    if (err instanceof LlmError) throw err;
    // What is left is the connection failing while the answer was read (every shape of the
    // answer is checked above): a network failure, which a retry may fix.
    throw new LlmError(
      "network",
      `Provider connection failed: ${err instanceof Error ? err.message : String(err)}`,
      true,
    );
  } finally {
    clearTimeout(timer);
  }
}
