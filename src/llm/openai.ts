import type { Json } from "../contracts/common";
import { checkArguments } from "./arguments";
import type { LlmProvider } from "./config";
import {
  type ChatMessage,
  type ChatOnce,
  type ChatOptions,
  LlmError,
  MAX_RESPONSE_BYTES,
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
      let chunk: {
        model?: string;
        usage?: Record<string, unknown>;
        choices?: {
          delta?: {
            content?: unknown;
            tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[];
          };
        }[];
      };
      try {
        chunk = JSON.parse(payload);
      } catch (err) {
        if (err instanceof SyntaxError) throw new LlmError("bad_response", "Provider stream chunk is not JSON", false);
        throw err;
      }
      if (chunk.model) model = chunk.model;
      if (chunk.usage) usage = usageOf(chunk.usage, limits);
      const delta = chunk.choices?.[0]?.delta;
      if (typeof delta?.content === "string" && delta.content.length > 0) {
        text += delta.content;
        onDelta(delta.content);
      }
      for (const tc of delta?.tool_calls ?? []) {
        const i = tc.index ?? 0;
        const call = calls.get(i) ?? { id: "", name: "", args: "" };
        if (tc.id) call.id = tc.id;
        if (tc.function?.name) call.name += tc.function.name;
        if (tc.function?.arguments) call.args += tc.function.arguments;
        calls.set(i, call);
      }
    }
  }
  const toolCalls: ToolCall[] = [...calls.entries()]
    .sort(([a], [b]) => a - b)
    .map(([i, c]) => toolCall(c.id || `call_${i}`, c.name, c.args));
  return { text, toolCalls, model, usage };
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
      throw new LlmError("http_status", `Provider answered HTTP ${res.status}`, retryable, res.status);
    }
    if (stream && (res.headers.get("Content-Type") ?? "").includes("text/event-stream")) {
      return await readStream(res, p.model, limits, opts.onDelta as (text: string) => void);
    }
    const body = await res.text();
    if (body.length > MAX_RESPONSE_BYTES)
      throw new LlmError("too_large", `Provider answer over ${MAX_RESPONSE_BYTES} bytes`, false);
    let parsed: {
      model?: string;
      choices?: {
        message?: {
          content?: unknown;
          tool_calls?: { id?: unknown; function?: { name?: unknown; arguments?: unknown } }[];
        };
      }[];
      usage?: Record<string, unknown>;
    };
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      if (err instanceof SyntaxError) throw new LlmError("bad_response", "Provider answer is not JSON", false);
      throw err;
    }
    const message = parsed.choices?.[0]?.message;
    const toolCalls: ToolCall[] = (Array.isArray(message?.tool_calls) ? message.tool_calls : []).map((c, i) =>
      toolCall(typeof c?.id === "string" ? c.id : `call_${i}`, c?.function?.name, c?.function?.arguments ?? ""),
    );
    if (typeof message?.content !== "string" && toolCalls.length === 0) {
      throw new LlmError("bad_response", "Provider answer has no message content", false);
    }
    const text = typeof message?.content === "string" ? message.content : "";
    if (text && opts.onDelta) opts.onDelta(text);
    return {
      text,
      toolCalls,
      model: parsed.model ?? p.model,
      usage: usageOf(parsed.usage, limits),
    };
  } catch (err) {
    if (controller.signal.aborted && !(err instanceof LlmError && err.reason === "timeout")) {
      throw new LlmError("timeout", `Provider did not answer within ${p.timeoutMs} ms`, true);
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
