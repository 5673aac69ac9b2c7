import { z } from "zod";
import { estimatedCost, tokenBudget } from "../llm/budget";
import { chat, LlmError, tokensOf } from "../llm/client";
import { llmProvider } from "../llm/config";
import { nonRetryable, ToolError } from "./errors";
import { DEFAULT_RETRY, defineTool } from "./types";

export const llmTool = defineTool({
  name: "llm",
  description:
    "Generates text with the configured LLM provider: {prompt, max_tokens?} → {text}. Fails (not retried) when no provider is configured.",
  inputSchema: z
    .object({
      prompt: z.string().min(1).max(8000),
      max_tokens: z.number().int().min(1).max(4000).optional(),
    })
    .strict(),
  effects: { resource: null, mode: "none" },
  retry: DEFAULT_RETRY,
  needsLlm: true,
  execute: async ({ prompt, max_tokens }, { env, tenant, onDelta }) => {
    const provider = llmProvider(env);
    if (!provider)
      throw nonRetryable("No LLM provider is configured (LLM_BASE_URL and LLM_MODEL, or AI)", "llm_unavailable");
    const maxTokens = max_tokens ?? 512;
    const held = await tokenBudget(env, tenant).hold(estimatedCost(prompt.length, maxTokens));
    if (!held.ok) {
      const { message, retryable, code, retry_after_ms, waited } = held.refusal;
      throw new ToolError(message, { retryable, code, retryAfterMs: retry_after_ms, waited });
    }
    let tokens = 0;
    try {
      const answer = await chat(provider, [{ role: "user", content: prompt }], {
        maxTokens,
        ...(onDelta ? { onDelta } : {}),
      });
      tokens = tokensOf(answer);
      return { text: answer.text };
    } catch (err) {
      if (!(err instanceof LlmError)) throw err;
      throw new ToolError(err.message, { retryable: err.retryable, code: err.reason, retryAfterMs: err.retryAfterMs });
    } finally {
      await held.settle(tokens);
    }
  },
});
