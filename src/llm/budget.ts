import { intVar } from "../config";
import type { Env } from "../env";
import { gateStub } from "../tenancy/gate";

/** Default LLM tokens a tenant may use per UTC day (`LLM_TOKENS_PER_DAY`). */
export const DEFAULT_TOKENS_PER_DAY = 1_000_000;

const today = (now = Date.now()) => new Date(now).toISOString().slice(0, 10);

/**
 * A tenant's daily LLM token budget, kept by its gate and shared by the planner, the `llm` tool
 * and agent steps. Checked before a call (a spent budget refuses it) and charged after, with the
 * tokens the provider reported; a call in flight may overrun the day's budget by its own size.
 */
export const tokenBudget = (env: Env, tenant: string) => {
  const limit = intVar(env.LLM_TOKENS_PER_DAY, DEFAULT_TOKENS_PER_DAY);
  const gate = gateStub(env, tenant);
  return {
    limit,
    async left(): Promise<number> {
      return (await gate.tokens(today(), limit, 0)).left;
    },
    async spend(tokens: number): Promise<void> {
      if (tokens > 0) await gate.tokens(today(), limit, tokens);
    },
  };
};
