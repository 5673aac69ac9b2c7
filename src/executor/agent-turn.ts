import type { Json } from "../contracts/common";
import { LIMITS } from "../contracts/limits";
import type { Env } from "../env";
import { estimatedCost, tokenBudget } from "../llm/budget";
import { type ChatMessage, chat, LlmError, type ToolSpec, tokensOf } from "../llm/client";
import { llmProvider } from "../llm/config";
import { MAX_CALLS_PER_TURN } from "../tools/agent";
import { outputBytes } from "../tools/run";
import type { AttemptGrant, AttemptOutcome } from "../tools/types";

/** What the coordinator hands a model turn (`agentTurnContext`). */
interface TurnContext {
  goal: string;
  tools: ToolSpec[];
  messages: ChatMessage[];
  max_tokens: number;
}

const SYSTEM = [
  "You are an agent inside Crane, a durable agent runtime. Work toward the user's goal.",
  "Call the tools you are given when you need them; each call's result comes back to you.",
  "When you have what you need, answer with the final answer as plain text and call no tool.",
].join(" ");

/** Characters kept of an answer too large to be the step's output (the step then fails). */
const OVERSIZED_ANSWER_KEPT = 1000;

/**
 * A turn's answer as recorded. One over the output limit (it would fail the step) is not stored
 * whole: its first characters are, with `answer_bytes`, its size as the step's answer.
 */
function answered(text: string, tokens: number): Json {
  const bytes = outputBytes({ answer: text });
  if (bytes <= LIMITS.maxOutputBytes) return { answer: text, tokens };
  return {
    answer: Array.from(text.slice(0, 2 * OVERSIZED_ANSWER_KEPT))
      .slice(0, OVERSIZED_ANSWER_KEPT)
      .join(""),
    answer_bytes: bytes,
    tokens,
  };
}

/**
 * One model turn of an agent step: checks the tenant's daily token budget, asks the model (goal,
 * tools as functions, the transcript so far), streams its text to watchers, charges the tokens,
 * and returns the model's answer or tool calls for the coordinator to record before it acts on them.
 */
export async function runTurn(
  env: Env,
  tenant: string,
  grant: AttemptGrant,
  onDelta: (text: string, reset?: boolean) => void,
): Promise<AttemptOutcome> {
  const provider = llmProvider(env);
  if (!provider) {
    return {
      ok: false,
      error: { message: "no LLM provider is configured", retryable: false, code: "llm_unavailable" },
    };
  }
  const turn = grant.turn as unknown as TurnContext;
  const messages: ChatMessage[] = [
    { role: "system", content: SYSTEM },
    { role: "user", content: turn.goal },
    ...turn.messages,
  ];
  const held = await tokenBudget(env, tenant).hold(
    estimatedCost(JSON.stringify(messages).length + JSON.stringify(turn.tools).length, turn.max_tokens),
  );
  if (!held.ok) return { ok: false, error: held.refusal };
  let tokens = 0;
  try {
    const answer = await chat(provider, messages, { maxTokens: turn.max_tokens, tools: turn.tools, onDelta });
    tokens = tokensOf(answer);
    // A turn keeps the calls it may make; of the rest, only how many (one huge answer of thousands
    // of calls would otherwise become thousands of events and a run of megabytes).
    const refused = Math.max(0, answer.toolCalls.length - MAX_CALLS_PER_TURN);
    const output: Json =
      answer.toolCalls.length > 0
        ? {
            ...(refused > 0 ? { calls_refused: refused } : {}),
            tool_calls: answer.toolCalls.slice(0, MAX_CALLS_PER_TURN).map((c) => ({
              name: c.name,
              arguments: c.arguments,
              ...(c.invalid === undefined ? {} : { invalid: c.invalid }),
            })),
            tokens,
          }
        : answered(answer.text, tokens);
    return { ok: true, output };
  } catch (err) {
    if (!(err instanceof LlmError)) throw err;
    return {
      ok: false,
      error: {
        message: err.message,
        retryable: err.retryable,
        code: err.reason,
        ...(err.retryAfterMs === null ? {} : { retry_after_ms: err.retryAfterMs }),
      },
    };
  } finally {
    await held.settle(tokens);
  }
}
