import { intVar } from "../config";
import type { Env } from "../env";

/** Which LLM provider is configured, if any. */
export type LlmProvider =
  | { kind: "openai"; baseUrl: string; apiKey: string | null; model: string; timeoutMs: number }
  | { kind: "workers-ai"; ai: Ai; model: string; timeoutMs: number };

const DEFAULT_TIMEOUT_MS = 20_000;

/**
 * The provider from the environment: an OpenAI-compatible endpoint when `LLM_BASE_URL` is set
 * (OpenAI, Cloudflare AI Gateway, a local server), else the Workers AI binding `AI` when bound;
 * both need `LLM_MODEL`. Null when nothing is configured, as locally and in most tests.
 */
export function llmProvider(env: Env): LlmProvider | null {
  const model = env.LLM_MODEL?.trim();
  if (!model) return null;
  const timeoutMs = intVar(env.LLM_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
  if (env.LLM_BASE_URL?.trim()) {
    return {
      kind: "openai",
      baseUrl: env.LLM_BASE_URL.trim().replace(/\/+$/, ""),
      apiKey: env.LLM_API_KEY ?? null,
      model,
      timeoutMs,
    };
  }
  if (env.AI) return { kind: "workers-ai", ai: env.AI, model, timeoutMs };
  return null;
}
