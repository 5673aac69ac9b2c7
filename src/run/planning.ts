import { BreakerClient } from "../breaker/breaker";
import type { RunEvent } from "../contracts/run";
import type { Env } from "../env";
import { estimatedCost, tokenBudget } from "../llm/budget";
import { llmProvider } from "../llm/config";
import { PlanValidationError, validatePlan } from "../plan/validate";
import { type LlmCall, LlmPlanError, PLAN_MAX_TOKENS, planWithLlm, planWithRules } from "../planner";
import type { ToolRegistry } from "../tools/registry";
import type { CreateRunCommand } from "./api";
import type { EventDraft } from "./events";

/** The `run.created` event of a new run. */
export function createdEvent(cmd: CreateRunCommand, now: number): RunEvent {
  return {
    seq: 1,
    type: "run.created",
    at: new Date(now).toISOString(),
    data: {
      run_id: cmd.runId,
      tenant: cmd.tenant,
      prompt: cmd.prompt,
      planner: cmd.planner,
      options: cmd.options,
      trace_id: cmd.traceId,
      request_id: cmd.requestId,
      origin: cmd.origin,
      rerun_of: cmd.rerunOf,
    },
  };
}

/** A rerun's steps that keep the original's output: recorded as reused, run by nobody. */
export function reusedEvents(cmd: CreateRunCommand): EventDraft[] {
  if (!cmd.reuse) return [];
  const { fromRun, outputs } = cmd.reuse;
  return Object.entries(outputs)
    .map(([n, output]) => ({ n: Number(n), output }))
    .sort((a, b) => a.n - b.n)
    .map(({ n, output }) => ({ type: "step.reused", step_number: n, data: { output, from_run: fromRun } }));
}

const NO_PROVIDER =
  "The llm planner was requested but no LLM provider is configured (set LLM_BASE_URL and LLM_MODEL, or bind AI and set LLM_MODEL)";

/** The LLM planner's breaker, apart from the `llm` tool's: a tool's inputs must not trip planning. */
const PLANNER_BREAKER = "planner";

const callEvent = (call: LlmCall): EventDraft => ({ type: "plan.llm_call", data: { ...call } });

function rulesPlan(cmd: CreateRunCommand, registry: ToolRegistry, llm: boolean): EventDraft {
  try {
    // A pause is a `sleep` only while it fits well inside the run's step timeout (half of it).
    const input = planWithRules(cmd.prompt, { sleepMaxMs: cmd.options.step_timeout_ms / 2 });
    const plan = validatePlan(input, registry, {
      planId: crypto.randomUUID(),
      planner: "rules",
      finalGoal: input.final_goal ?? cmd.prompt,
      llm,
    });
    return { type: "run.planned", data: { plan } };
  } catch (err) {
    const error =
      err instanceof PlanValidationError
        ? `Could not parse prompt: the planned steps are invalid (${err.issues.map((i) => `${i.path}: ${i.message}`).join("; ")})`
        : err instanceof Error
          ? err.message
          : String(err);
    return { type: "run.failed", data: { error } };
  }
}

/**
 * Plans a new run. An explicit plan is taken as given (the API validated it). `auto` asks the
 * LLM when one is configured and falls back to the rules planner on any failure, recording why
 * (`plan.fallback`); `llm` never falls back; `rules` never asks the LLM. Every provider call is
 * recorded (`plan.llm_call`: model, latency, tries, tokens). A prompt that cannot be planned
 * fails the run (docs/api.md: the POST still answers 201).
 */
export async function planRun(
  cmd: CreateRunCommand,
  env: Env,
  registry: ToolRegistry,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<EventDraft[]> {
  if (cmd.plan) return [{ type: "run.planned", data: { plan: cmd.plan } }, ...reusedEvents(cmd)];
  const provider = llmProvider(env);
  if (cmd.planner === "llm" && !provider) return [{ type: "run.failed", data: { error: NO_PROVIDER } }];
  if (cmd.planner === "rules" || !provider) return [rulesPlan(cmd, registry, provider !== null)];

  // The tenant's daily LLM token budget is shared with the llm tool and agent steps: planning holds
  // what its two rounds may cost, waiting a moment for calls in flight to settle.
  const held = await tokenBudget(env, cmd.tenant).hold(PLANNING_COST(cmd.prompt.length));
  if (!held.ok) {
    const { code, message } = held.refusal;
    const detail = message.replace(/^budget_\w+: /, "");
    if (cmd.planner === "llm")
      return [{ type: "run.failed", data: { error: `LLM planner failed (${code}): ${detail}` } }];
    return [
      { type: "plan.fallback", data: { from: "llm", to: "rules", reason: code, detail } },
      rulesPlan(cmd, registry, true),
    ];
  }
  const charge = (calls: LlmCall[]) =>
    waitUntil(held.settle(calls.reduce((n, c) => n + (c.prompt_tokens ?? 0) + (c.completion_tokens ?? 0), 0)));

  let probe = false;
  const breaker = {
    admit: async () => {
      const admission = await BreakerClient.admit(env, cmd.tenant, PLANNER_BREAKER, waitUntil);
      probe = admission.allow && admission.probe;
      return admission.allow;
    },
    report: (ok: boolean) => waitUntil(BreakerClient.report(env, cmd.tenant, PLANNER_BREAKER, ok, probe)),
  };
  try {
    const { plan, calls } = await planWithLlm(cmd.prompt, provider, registry, breaker);
    charge(calls);
    return [...calls.map(callEvent), { type: "run.planned", data: { plan } }];
  } catch (err) {
    if (!(err instanceof LlmPlanError)) {
      charge([]);
      throw err;
    }
    charge(err.calls);
    const calls = err.calls.map(callEvent);
    if (cmd.planner === "llm") {
      return [...calls, { type: "run.failed", data: { error: `LLM planner failed (${err.reason}): ${err.detail}` } }];
    }
    return [
      ...calls,
      { type: "plan.fallback", data: { from: "llm", to: "rules", reason: err.reason, detail: err.detail } },
      rulesPlan(cmd, registry, true),
    ];
  }
}

/** What planning may cost: two rounds (a plan and its repair) of the planner's prompt and answer. */
const PLANNING_COST = (promptChars: number) => 2 * estimatedCost(promptChars + PLANNER_PROMPT_CHARS, PLAN_MAX_TOKENS);
/** The planner's own instructions and tool list, about (src/planner/llm.ts). */
const PLANNER_PROMPT_CHARS = 8000;
