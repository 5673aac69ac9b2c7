import { intVar } from "../config";
import type { Env } from "../env";
import { log } from "../observability/log";
import { gateStub } from "../tenancy/gate";
import { CHARS_PER_TOKEN } from "./types";

/** Default LLM tokens a tenant may use per UTC day (`LLM_TOKENS_PER_DAY`). */
export const DEFAULT_TOKENS_PER_DAY = 1_000_000;

/** When a call refused because others hold what is left is worth retrying. */
const BUDGET_BUSY_RETRY_MS = 1000;

/** How long a call waits, and how often it asks again, while calls in flight hold what is left. */
const BUSY_WAITS = [250, 500, 1000];

const today = (now = Date.now()) => new Date(now).toISOString().slice(0, 10);

/** What a call may cost: its prompt (characters / 4) and all it may write. */
export const estimatedCost = (promptChars: number, maxTokens: number): number =>
  Math.ceil(promptChars / CHARS_PER_TOKEN) + maxTokens;

/** Why the budget refused a call, as the attempt that asked records it (a `FailureInfo`). */
export interface BudgetRefusal {
  message: string;
  code: "budget_exhausted" | "budget_busy";
  /** Spent: for good. Busy: retried after `BUDGET_BUSY_RETRY_MS`, an attempt that only waited. */
  retryable: boolean;
  retry_after_ms?: number;
  waited?: true;
}

export type Hold = { ok: true; settle: (tokens: number) => Promise<void> } | { ok: false; refusal: BudgetRefusal };

/**
 * A tenant's daily LLM token budget, kept by its gate and shared by the planner, the `llm` tool
 * and agent steps. A call holds its estimated cost first (refused when the day is spent, or —
 * retryable — while calls in flight hold what is left), then settles with the tokens the provider
 * reported. Calls at the same moment therefore share what is left instead of each spending it.
 */
export const tokenBudget = (env: Env, tenant: string) => {
  const limit = intVar(env.LLM_TOKENS_PER_DAY, DEFAULT_TOKENS_PER_DAY);
  const gate = gateStub(env, tenant);
  return {
    limit,
    /**
     * Holds `want` tokens, waiting a moment (about 1.75 s in all) while calls in flight hold what
     * is left. `settle` never throws: a settle that fails is logged, and the hold lapses.
     */
    async hold(want: number): Promise<Hold> {
      const id = crypto.randomUUID();
      const day = today();
      let answer = await gate.holdTokens(day, limit, want, id);
      for (const wait of BUSY_WAITS) {
        if (answer.held || answer.spent) break;
        await new Promise((r) => setTimeout(r, wait));
        answer = await gate.holdTokens(day, limit, want, id);
      }
      if (answer.held) {
        let settled = false;
        return {
          ok: true,
          // Charged to the day the call was let through on, even when it ends after midnight.
          settle: async (tokens) => {
            if (settled) return;
            settled = true;
            try {
              await gate.settleTokens(day, id, tokens);
            } catch (err) {
              log("warn", "could not settle an LLM token hold; it lapses unsettled", { tenant, error: err });
            }
          },
        };
      }
      const refusal: BudgetRefusal = answer.spent
        ? {
            message: `budget_exhausted: the tenant's ${limit} LLM tokens for today are spent`,
            code: "budget_exhausted",
            retryable: false,
          }
        : {
            message: `budget_busy: calls in flight hold the ${answer.left} LLM tokens left of the tenant's ${limit} for today`,
            code: "budget_busy",
            retryable: true,
            retry_after_ms: BUDGET_BUSY_RETRY_MS,
            waited: true,
          };
      return { ok: false, refusal };
    },
  };
};
