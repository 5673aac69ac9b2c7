import type { Json } from "../contracts/common";
import { LIMITS } from "../contracts/limits";
import { resolveReferences } from "../plan/references";
import { AGENT_DEFAULTS, callableByAgent } from "../tools/agent";
import { classifyError } from "../tools/errors";
import { inputJsonSchema } from "../tools/registry";
import { dispatch, stepOutputs } from "./attempts";
import type { DecideContext } from "./context";
import type { EventDraft } from "./events";
import type { RunState, StepState } from "./state";
import { ACTIVE, DONE, newTask } from "./tasks";

/** Most tool calls one model turn may ask for; more are answered as errors, not run. */
export const MAX_CALLS_PER_TURN = 16;
/** A tool's result as the model sees it in the transcript (keeps prompts bounded). */
const MAX_RESULT_CHARS = 4000;
/** Tokens one turn may ask the provider for. */
const MAX_TURN_TOKENS = 4096;

export interface AgentConfig {
  goal: string;
  tools: string[];
  maxTurns: number;
  maxTokens: number;
}

/** A model's request to call a tool, as a turn records it. */
export interface ToolCallRequest {
  name: string;
  arguments: Json;
  /** Why the provider client refused the arguments (too large, too deep, not JSON); they are then `{}`. */
  invalid?: string;
}

const isObject = (v: Json | undefined): v is Record<string, Json> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

export function agentConfig(s: StepState, ctx: DecideContext): AgentConfig {
  const input = s.input as { goal?: string; tools?: string[]; max_turns?: number; max_tokens?: number };
  const tools = input.tools ?? [...ctx.registry.values()].filter((t) => callableByAgent(t)).map((t) => t.name);
  return {
    goal: input.goal ?? "",
    tools,
    maxTurns: input.max_turns ?? AGENT_DEFAULTS.maxTurns,
    maxTokens: input.max_tokens ?? AGENT_DEFAULTS.maxTokens,
  };
}

const stepFailed = (s: StepState, error: string, code: string): EventDraft => ({
  type: "step.failed",
  step_number: s.step.step_number,
  attempt: s.attempt,
  data: { error, code, retryable: false },
});

const turnTask = (s: StepState, turn: number) =>
  newTask({ step: s.step.step_number, kind: "turn", index: turn }, "agent", {});

/** An agent step starts: its input (references resolved) is fixed and the first model turn dispatched. */
export function startAgent(state: RunState, s: StepState, ctx: DecideContext): EventDraft[] {
  let input: Record<string, Json>;
  try {
    input = resolveReferences(s.step.tool_input, stepOutputs(state)) as Record<string, Json>;
  } catch (err) {
    return [{ ...stepFailed(s, classifyError(err).message, "bad_reference"), attempt: 1 }];
  }
  return [dispatch(state, turnTask(s, 1), ctx, { input })];
}

/** Why a requested call must not run, or null when it may. */
function callProblem(call: ToolCallRequest, cfg: AgentConfig, ctx: DecideContext): string | null {
  const tool = ctx.registry.get(call.name);
  if (!cfg.tools.includes(call.name) || !callableByAgent(tool)) {
    return `Tool '${call.name}' is not available to this agent (allowed: ${cfg.tools.join(", ")})`;
  }
  if (typeof call.invalid === "string") return `Arguments for ${call.name} ${call.invalid}`;
  if (!isObject(call.arguments)) {
    return `Arguments for ${call.name} must be a JSON object`;
  }
  if (new TextEncoder().encode(JSON.stringify(call.arguments)).length > LIMITS.maxToolInputBytes) {
    return `Arguments for ${call.name} exceed ${LIMITS.maxToolInputBytes} bytes`;
  }
  const parsed = tool.inputSchema.safeParse(call.arguments);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    return `Invalid arguments for ${call.name}: ${where}${issue?.message}`;
  }
  return null;
}

/**
 * One step of an agent's loop, decided from the log: after a turn that answered, the step
 * succeeds; after a turn that asked for tools, its calls are validated (an invalid one is recorded
 * as failed and answered to the model as an error) and dispatched like steps; when they are all
 * done, the next turn — unless a budget is spent, which fails the step, not retried.
 */
export function advanceAgent(state: RunState, s: StepState, ctx: DecideContext): EventDraft[] {
  const agent = s.agent;
  if (s.phase !== "running" || !agent) return [];
  const last = agent.turns.at(-1);
  if (!last || ACTIVE.has(last.phase) || last.phase === "pending") return [];
  const k = last.ref.index;
  if (last.phase === "failed") {
    const code = /budget_exhausted/.test(last.error ?? "") ? "budget_exhausted" : "model_failed";
    return [stepFailed(s, `Model turn ${k} failed: ${last.error}`, code)];
  }
  if (last.phase !== "succeeded") return [];
  const cfg = agentConfig(s, ctx);
  const out = (last.output ?? {}) as { answer?: Json; tool_calls?: Json };
  if (typeof out.answer === "string") {
    return [
      {
        type: "step.succeeded",
        step_number: s.step.step_number,
        attempt: s.attempt,
        data: { output: { answer: out.answer, turns: k, calls: agent.calls.length, tokens: agent.tokens } },
      },
    ];
  }
  const asked = (Array.isArray(out.tool_calls) ? out.tool_calls : []) as unknown as ToolCallRequest[];
  const before = agent.calls.filter((c) => c.turn < k).length;
  const drafts: EventDraft[] = [];
  asked.forEach((call, j) => {
    const index = before + j + 1;
    if (agent.calls.some((c) => c.ref.index === index)) return;
    const ref = { step: s.step.step_number, kind: "call" as const, index };
    const problem =
      j >= MAX_CALLS_PER_TURN ? `More than ${MAX_CALLS_PER_TURN} tool calls in one turn` : callProblem(call, cfg, ctx);
    const fields = {
      turn: k,
      tool_name: String(call.name),
      tool_input: isObject(call.arguments) ? call.arguments : {},
    };
    if (problem) {
      drafts.push({
        type: "agent.call_failed",
        step_number: s.step.step_number,
        attempt: 0,
        data: { call: index, ...fields, error: problem, code: "invalid_call", retryable: false },
      });
    } else {
      drafts.push(dispatch(state, newTask(ref, call.name, call.arguments as Record<string, Json>), ctx, fields));
    }
  });
  if (drafts.length > 0) return drafts;
  if (agent.calls.some((c) => c.turn === k && !DONE.has(c.phase))) return [];
  if (k >= cfg.maxTurns || agent.tokens >= cfg.maxTokens) {
    return [
      stepFailed(
        s,
        `agent budget exhausted: ${k} of ${cfg.maxTurns} turns, ${agent.tokens} of ${cfg.maxTokens} tokens, and no answer`,
        "budget_exhausted",
      ),
    ];
  }
  return [dispatch(state, turnTask(s, k + 1), ctx)];
}

const clip = (text: string) =>
  text.length > MAX_RESULT_CHARS ? `${text.slice(0, MAX_RESULT_CHARS)}…(truncated)` : text;

/**
 * What a model turn is asked with: the goal, the allowed tools as function schemas, and the
 * transcript of earlier turns (each tool call with its result or error), provider-neutral; the
 * consumer turns it into the provider's messages.
 */
export function agentTurnContext(_state: RunState, s: StepState, ctx: DecideContext): Json {
  const cfg = agentConfig(s, ctx);
  const agent = s.agent ?? { turns: [], calls: [], tokens: 0 };
  const messages: Json[] = [];
  for (const turn of agent.turns) {
    if (turn.phase !== "succeeded") continue;
    const calls = agent.calls.filter((c) => c.turn === turn.ref.index);
    if (calls.length === 0) continue;
    messages.push({
      role: "assistant",
      tool_calls: calls.map((c) => ({ id: `call_${c.ref.index}`, name: c.tool, arguments: c.template })),
    });
    for (const c of calls) {
      const content =
        c.phase === "succeeded" ? clip(JSON.stringify(c.output)) : `Error: ${c.error ?? "the call did not complete"}`;
      messages.push({ role: "tool", tool_call_id: `call_${c.ref.index}`, content });
    }
  }
  return {
    goal: cfg.goal,
    tools: cfg.tools.flatMap((name) => {
      const tool = ctx.registry.get(name);
      return tool ? [{ name, description: tool.description, parameters: inputJsonSchema(tool) }] : [];
    }),
    messages,
    max_tokens: Math.max(1, Math.min(MAX_TURN_TOKENS, cfg.maxTokens - agent.tokens)),
  };
}
