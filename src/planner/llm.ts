import { z } from "zod";
import type { Json } from "../contracts/common";
import { nestsDeeperThan } from "../contracts/json-depth";
import { LIMITS } from "../contracts/limits";
import { type Plan, planInputSchema } from "../contracts/plan";
import { type ChatMessage, chat, LlmError } from "../llm/client";
import type { LlmProvider } from "../llm/config";
import { PlanValidationError, validatePlan } from "../plan/validate";
import { inputJsonSchema, type ToolRegistry } from "../tools/registry";

/** What one provider call cost, recorded as a `plan.llm_call` event. */
export interface LlmCall {
  model: string;
  latency_ms: number;
  tries: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  outcome: "ok" | "invalid_json" | "invalid_plan" | "error";
  detail?: string;
}

/** The LLM could not produce a valid plan; `reason` is what a fallback records. */
export class LlmPlanError extends Error {
  constructor(
    readonly reason: string,
    readonly detail: string,
    readonly calls: LlmCall[],
  ) {
    super(`${reason}: ${detail}`);
    this.name = "LlmPlanError";
  }
}

/** The JSON Schema of a plan, built from the registry: tool names as constants, each with its input schema. */
export function planJsonSchema(registry: ToolRegistry): Record<string, Json> {
  const stepFor = (name: string, input: Json) => ({
    type: "object",
    additionalProperties: false,
    required: ["step_number", "tool_name", "tool_input"],
    properties: {
      step_number: { type: "integer", minimum: 1 },
      tool_name: { const: name },
      tool_input: input,
      reasoning: { type: "string" },
      depends_on: { type: "array", items: { type: "integer", minimum: 1 } },
    },
  });
  return {
    type: "object",
    additionalProperties: false,
    required: ["steps"],
    properties: {
      final_goal: { type: "string" },
      steps: {
        type: "array",
        minItems: 1,
        maxItems: LIMITS.maxSteps,
        items: {
          anyOf: [...registry.values()].map((t) => stepFor(t.name, inputJsonSchema(t))),
        },
      },
    },
  };
}

/** Tokens a planning call may write (a plan of 50 steps fits). */
export const PLAN_MAX_TOKENS = 4096;

function systemPrompt(registry: ToolRegistry): string {
  const catalog = [...registry.values()]
    .map(
      (t) =>
        `- ${t.name}: ${t.description}\n  input: ${JSON.stringify(z.toJSONSchema(t.inputSchema, { io: "input" }))}`,
    )
    .join("\n");
  return [
    "You plan tasks for Crane, an agent runtime. Turn the user's request into a plan of tool calls.",
    'Answer with one JSON object and nothing else: {"final_goal": string, "steps": [{"step_number", "tool_name", "tool_input", "reasoning", "depends_on"}]}.',
    "Rules: step_number starts at 1 and increases. Steps run in parallel unless one lists another in depends_on.",
    'To use an earlier step\'s output write "{{steps.N.output}}" (or "{{steps.N.output.field.path}}") in a string of tool_input; that adds the dependency. A string that is exactly one reference takes the value with its type.',
    `At most ${LIMITS.maxSteps} steps. Use only these tools:`,
    catalog,
  ].join("\n");
}

/** Why a parsed answer is not a valid plan, or null with the plan when it is. */
function check(
  text: string,
  registry: ToolRegistry,
): { plan: Plan } | { outcome: "invalid_json" | "invalid_plan"; detail: string } {
  // Checked on the text, before anything walks the value: the validator and the reference scanner
  // recurse, and a plan nested 60,000 arrays deep would exhaust their stack. The same limit as a
  // request body's, so an LLM plan can be no deeper than an explicit one.
  if (nestsDeeperThan(text, LIMITS.maxJsonDepth)) {
    return {
      outcome: "invalid_plan",
      detail: `the plan nests arrays or objects deeper than ${LIMITS.maxJsonDepth} levels`,
    };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return { outcome: "invalid_json", detail: `the answer is not JSON (${err.message})` };
  }
  const shaped = planInputSchema.safeParse(raw);
  if (!shaped.success) {
    const i = shaped.error.issues[0];
    return { outcome: "invalid_plan", detail: `${i?.path.join(".") || "plan"}: ${i?.message}` };
  }
  try {
    return {
      plan: validatePlan(shaped.data, registry, {
        planId: crypto.randomUUID(),
        planner: "llm",
        finalGoal: shaped.data.final_goal ?? "",
        llm: true,
      }),
    };
  } catch (err) {
    if (!(err instanceof PlanValidationError)) throw err;
    return { outcome: "invalid_plan", detail: err.issues.map((i) => `${i.path}: ${i.message}`).join("; ") };
  }
}

/**
 * Plans with the LLM: a structured-output request carrying the plan's JSON Schema and the tool
 * catalog; the answer is untrusted input (OWASP API10) and is validated exactly like an explicit
 * plan. One repair round sends the validation errors back.
 *
 * @throws LlmPlanError with the reason (timeout, http 500, invalid JSON, which validation failed).
 */
export async function planWithLlm(
  prompt: string,
  provider: LlmProvider,
  registry: ToolRegistry,
  breaker: { admit(): Promise<boolean>; report(ok: boolean): void },
): Promise<{ plan: Plan; calls: LlmCall[] }> {
  const calls: LlmCall[] = [];
  const messages: ChatMessage[] = [
    { role: "system", content: systemPrompt(registry) },
    { role: "user", content: prompt },
  ];
  const schema = planJsonSchema(registry);
  for (let round = 1; round <= 2; round++) {
    if (!(await breaker.admit()))
      throw new LlmPlanError("circuit_open", "the LLM provider's circuit breaker is open", calls);
    let answer: Awaited<ReturnType<typeof chat>>;
    try {
      answer = await chat(provider, messages, { maxTokens: PLAN_MAX_TOKENS, jsonSchema: schema });
      breaker.report(true);
    } catch (err) {
      if (!(err instanceof LlmError)) throw err;
      breaker.report(!err.retryable);
      calls.push({
        model: provider.model,
        latency_ms: err.latency_ms,
        tries: err.tries,
        prompt_tokens: null,
        completion_tokens: null,
        outcome: "error",
        detail: err.message,
      });
      const reason = err.reason === "http_status" ? `http ${err.status}` : err.reason;
      throw new LlmPlanError(reason, err.message, calls);
    }
    const verdict = check(answer.text, registry);
    calls.push({
      model: answer.model,
      latency_ms: answer.latency_ms,
      tries: answer.tries,
      prompt_tokens: answer.usage?.prompt_tokens ?? null,
      completion_tokens: answer.usage?.completion_tokens ?? null,
      outcome: "plan" in verdict ? "ok" : verdict.outcome,
      ...("plan" in verdict ? {} : { detail: verdict.detail }),
    });
    if ("plan" in verdict) return { plan: verdict.plan, calls };
    if (round === 2)
      throw new LlmPlanError(
        verdict.outcome === "invalid_json" ? "invalid JSON" : "invalid plan",
        verdict.detail,
        calls,
      );
    messages.push(
      { role: "assistant", content: answer.text.slice(0, 8000) },
      { role: "user", content: `That plan is invalid: ${verdict.detail}. Answer with a corrected plan, as JSON only.` },
    );
  }
  throw new LlmPlanError("invalid plan", "no valid plan after a repair", calls);
}
