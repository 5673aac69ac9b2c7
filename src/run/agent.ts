import type { Json } from "../contracts/common";
import { LIMITS } from "../contracts/limits";
import { MAX_PROMPT_CHARS } from "../llm/types";
import { resolveReferences } from "../plan/references";
import { AGENT_DEFAULTS, callableByAgent, MAX_CALLS_PER_TURN } from "../tools/agent";
import { classifyError } from "../tools/errors";
import { parseToolInput } from "../tools/input";
import { modelParameters } from "../tools/model-schema";
import { outputTooLarge, oversizedOutput } from "../tools/run";
import { dispatch, stepOutputs } from "./attempts";
import type { DecideContext } from "./context";
import type { EventDraft } from "./events";
import type { RunState, StepState } from "./state";
import { ACTIVE, DONE, newTask } from "./tasks";

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

const positiveInt = (v: Json | undefined, fallback: number): number =>
  typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : fallback;

/**
 * The loop's settings from the step's input with its references resolved: `startAgent` resolves
 * and validates it, and the first turn's `agent.turn_dispatched` records it (the fold keeps it as
 * `s.input`), so a goal of `{{steps.1.output}}` reaches the model as step 1's output.
 */
export function agentConfig(s: StepState, ctx: DecideContext): AgentConfig {
  const input = s.input as { goal?: Json; tools?: Json; max_turns?: Json; max_tokens?: Json };
  // A tool named twice is offered once: some providers refuse a request that names a function twice.
  const tools = Array.isArray(input.tools)
    ? [...new Set(input.tools.map(String))]
    : [...ctx.registry.values()].filter((t) => callableByAgent(t)).map((t) => t.name);
  return {
    goal: typeof input.goal === "string" ? input.goal : "",
    tools,
    maxTurns: positiveInt(input.max_turns, AGENT_DEFAULTS.maxTurns),
    maxTokens: positiveInt(input.max_tokens, AGENT_DEFAULTS.maxTokens),
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

/**
 * An agent step starts: its input is resolved and checked against the agent's schema like a tool
 * step's (a field that was exactly a reference is checked only now, with its value), then fixed
 * for the whole loop with the first model turn's dispatch.
 */
export function startAgent(state: RunState, s: StepState, ctx: DecideContext): EventDraft[] {
  let input: Record<string, Json>;
  try {
    input = resolveReferences(s.step.tool_input, stepOutputs(state)) as Record<string, Json>;
  } catch (err) {
    const failure = classifyError(err);
    return [{ ...stepFailed(s, failure.message, failure.code), attempt: 1 }];
  }
  const problem = inputProblem(s.step.tool_name, input, ctx);
  if (problem) return [{ ...stepFailed(s, problem, "invalid_input"), attempt: 1 }];
  return [dispatch(state, turnTask(s, 1), ctx, { input })];
}

/** What is wrong with an agent step's resolved input (as a tool step's input is reported), or null. */
function inputProblem(toolName: string, input: Record<string, Json>, ctx: DecideContext): string | null {
  const tool = ctx.registry.get(toolName);
  if (!tool) return `Unknown tool '${toolName}'`;
  const parsed = parseToolInput(tool, input);
  if (!parsed.ok) return parsed.message;
  const checked = tool.check?.(parsed.data, { now: ctx.now, tools: ctx.registry })[0];
  return checked ? `Invalid input for ${toolName}: ${checked.path}: ${checked.message}` : null;
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
 * One step of an agent's loop, decided from the log. The budget is checked after every turn: a
 * turn that takes the step's tokens over `max_tokens` fails the step, not retried — its answer is
 * not accepted and the calls it asked for are not run. Otherwise, after a turn that answered, the
 * step succeeds (an answer over the output limit fails it as a tool's output would); after a turn
 * that asked for tools, its calls are validated (an invalid one is recorded as failed and answered
 * to the model as an error) and dispatched like steps; when they are all done, the next turn —
 * unless no turn or token is left, which fails the step, not retried.
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
  const spent = `agent budget exhausted: ${k} of ${cfg.maxTurns} turns, ${agent.tokens} of ${cfg.maxTokens} tokens`;
  if (agent.tokens > cfg.maxTokens) {
    return [stepFailed(s, `${spent}: turn ${k} went over max_tokens`, "budget_exhausted")];
  }
  const out = (last.output ?? {}) as { answer?: Json; tool_calls?: Json; answer_bytes?: Json };
  // An answer over the output limit was recorded cut short, with its size.
  if (typeof out.answer_bytes === "number") {
    const tooLarge = outputTooLarge(out.answer_bytes);
    return [stepFailed(s, tooLarge.message, tooLarge.code)];
  }
  if (typeof out.answer === "string") {
    const output: Json = { answer: out.answer, turns: k, calls: agent.calls.length, tokens: agent.tokens };
    const tooLarge = oversizedOutput(output);
    if (tooLarge) return [stepFailed(s, tooLarge.message, tooLarge.code)];
    return [{ type: "step.succeeded", step_number: s.step.step_number, attempt: s.attempt, data: { output } }];
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
    return [stepFailed(s, `${spent}, and no answer`, "budget_exhausted")];
  }
  return [dispatch(state, turnTask(s, k + 1), ctx)];
}

const clip = (text: string) =>
  text.length > MAX_RESULT_CHARS ? `${text.slice(0, MAX_RESULT_CHARS)}…(truncated)` : text;

/**
 * Room the provider client leaves for anything but the transcript: its system prompt. The client
 * refuses a prompt over `MAX_PROMPT_CHARS` (src/llm/client.ts), counted as the transcript is here.
 */
const PROMPT_OVERHEAD_CHARS = 1000;
const OMITTED = "(result omitted to keep the prompt within its limit)";

/** One earlier turn as the model is shown it: its tool calls, then each call's result or error. */
interface TurnMessages {
  assistant: { role: "assistant"; tool_calls: { id: string; name: string; arguments: Json }[] };
  results: { role: "tool"; tool_call_id: string; content: string }[];
  /** Said after the results: the calls the turn asked for beyond `MAX_CALLS_PER_TURN`, not run. */
  note: { role: "user"; content: string } | null;
}

const sizeOf = (t: TurnMessages) =>
  JSON.stringify(t.assistant.tool_calls).length +
  t.results.reduce((n, r) => n + r.content.length, 0) +
  (t.note?.content.length ?? 0);

const refusedNote = (n: number) =>
  `(${n} more tool call${n === 1 ? "" : "s"} of that turn ${n === 1 ? "was" : "were"} not run: at most ${MAX_CALLS_PER_TURN} per turn.)`;

/**
 * Keeps the transcript within `budget` characters, oldest first: earlier results are replaced by a
 * note, then the oldest turns are left out (the model is told how many). The latest turn is always
 * sent whole; if it alone is over the limit, the provider client refuses the prompt and the turn fails.
 */
function fitTranscript(turns: TurnMessages[], budget: number): { turns: TurnMessages[]; dropped: number } {
  let total = turns.reduce((n, t) => n + sizeOf(t), 0);
  for (const turn of turns.slice(0, -1)) {
    for (const r of turn.results) {
      if (total <= budget) break;
      if (r.content.length <= OMITTED.length) continue;
      total -= r.content.length - OMITTED.length;
      r.content = OMITTED;
    }
  }
  let dropped = 0;
  // Leaving turns out adds a note of its own (`leftOut`): room for it is kept.
  while (total > budget - LEFT_OUT_CHARS && dropped < turns.length - 1) {
    total -= sizeOf(turns[dropped++] as TurnMessages);
  }
  return { turns: turns.slice(dropped), dropped };
}

const leftOut = (n: number) => `(The first ${n} turns are left out to keep the prompt within its limit.)`;
/** The note's longest form: an agent has at most 50 turns (`max_turns`). */
const LEFT_OUT_CHARS = leftOut(50).length;

/**
 * What a model turn is asked with: the goal, the allowed tools as function schemas, and the
 * transcript of earlier turns (each tool call with its result or error, trimmed oldest first to
 * fit the prompt limit), provider-neutral; the consumer turns it into the provider's messages.
 */
export function agentTurnContext(_state: RunState, s: StepState, ctx: DecideContext): Json {
  const cfg = agentConfig(s, ctx);
  const agent = s.agent ?? { turns: [], calls: [], tokens: 0 };
  const turns: TurnMessages[] = [];
  for (const turn of agent.turns) {
    if (turn.phase !== "succeeded") continue;
    const calls = agent.calls.filter((c) => c.turn === turn.ref.index);
    if (calls.length === 0) continue;
    const recorded = (turn.output ?? {}) as { calls_refused?: Json };
    const refused = typeof recorded.calls_refused === "number" ? recorded.calls_refused : 0;
    turns.push({
      assistant: {
        role: "assistant",
        tool_calls: calls.map((c) => ({ id: `call_${c.ref.index}`, name: c.tool, arguments: c.template })),
      },
      results: calls.map((c) => ({
        role: "tool",
        tool_call_id: `call_${c.ref.index}`,
        content:
          c.phase === "succeeded" ? clip(JSON.stringify(c.output)) : `Error: ${c.error ?? "the call did not complete"}`,
      })),
      note: refused > 0 ? { role: "user", content: refusedNote(refused) } : null,
    });
  }
  const fitted = fitTranscript(turns, MAX_PROMPT_CHARS - PROMPT_OVERHEAD_CHARS - cfg.goal.length);
  const messages: Json[] = fitted.dropped ? [{ role: "user", content: leftOut(fitted.dropped) }] : [];
  for (const t of fitted.turns) messages.push(t.assistant, ...t.results, ...(t.note ? [t.note] : []));
  return {
    goal: cfg.goal,
    tools: cfg.tools.flatMap((name) => {
      const tool = ctx.registry.get(name);
      return tool ? [{ name, description: tool.description, parameters: modelParameters(tool) }] : [];
    }),
    messages,
    max_tokens: Math.max(1, Math.min(MAX_TURN_TOKENS, cfg.maxTokens - agent.tokens)),
  };
}
