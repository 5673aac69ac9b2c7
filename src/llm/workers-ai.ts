import type { Json } from "../contracts/common";
import { valueNestsDeeperThan } from "../contracts/json-depth";
import { LIMITS } from "../contracts/limits";
import { checkArguments } from "./arguments";
import type { LlmProvider } from "./config";
import {
  type ChatMessage,
  type ChatOnce,
  type ChatOptions,
  LlmError,
  settledUsage,
  type ToolCall,
  usageOf,
} from "./types";

type WorkersAi = Extract<LlmProvider, { kind: "workers-ai" }>;

/** Workers AI takes OpenAI-style messages; tool calls and results travel as content text. */
function wireMessage(m: ChatMessage): Json {
  if (m.role === "assistant") {
    const calls = m.tool_calls?.length ? `Tool calls: ${JSON.stringify(m.tool_calls)}` : "";
    return { role: "assistant", content: [m.content ?? "", calls].filter(Boolean).join("\n") };
  }
  if (m.role === "tool") return { role: "user", content: `Result of ${m.tool_call_id}: ${m.content}` };
  return { role: m.role, content: m.content };
}

/** One call of the Workers AI binding (`AI`), under the provider's timeout. */
export async function workersAiOnce(p: WorkersAi, messages: ChatMessage[], opts: ChatOptions): Promise<ChatOnce> {
  const input = {
    messages: messages.map(wireMessage),
    max_tokens: opts.maxTokens,
    ...(opts.jsonSchema ? { response_format: { type: "json_schema", json_schema: opts.jsonSchema } } : {}),
    ...(opts.tools?.length ? { tools: opts.tools.map((t) => ({ type: "function", function: t })) } : {}),
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
  const r = (out ?? {}) as {
    response?: unknown;
    tool_calls?: { name?: unknown; arguments?: unknown }[];
    usage?: unknown;
  };
  // A structured answer arrives parsed; one nested too deep for `JSON.stringify` (or the plan
  // validator after it) is refused here, as the same text from an OpenAI-compatible provider is.
  if (typeof r.response === "object" && valueNestsDeeperThan(r.response, LIMITS.maxJsonDepth)) {
    throw new LlmError("bad_response", `Workers AI answer nests deeper than ${LIMITS.maxJsonDepth} levels`, false);
  }
  const text = typeof r.response === "string" ? r.response : r.response !== undefined ? JSON.stringify(r.response) : "";
  const toolCalls: ToolCall[] = (Array.isArray(r.tool_calls) ? r.tool_calls : []).map((c, i) => ({
    id: `call_${i}`,
    name: typeof c?.name === "string" ? c.name : "",
    ...checkArguments(c?.arguments),
  }));
  const limits = { prompt: new TextEncoder().encode(JSON.stringify(input)).length, completion: opts.maxTokens };
  if (!text && toolCalls.length === 0) throw new LlmError("bad_response", "Workers AI answer has no response", false);
  if (text && opts.onDelta) opts.onDelta(text);
  return {
    text,
    toolCalls,
    model: p.model,
    usage: settledUsage(usageOf(r.usage, limits), limits, text, toolCalls),
  };
}
