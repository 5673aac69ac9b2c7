import { z } from "zod";
import { nonRetryable } from "./errors";
import { DEFAULT_RETRY, defineTool, type Tool } from "./types";

export const AGENT_DEFAULTS = { maxTurns: 8, maxTokens: 8000 } as const;

/**
 * Most tool calls one model turn may ask for. A turn records the first ones only and how many more
 * it asked for (`calls_refused`); the model is told they were not run, in one note.
 */
export const MAX_CALLS_PER_TURN = 16;

/** Tools an agent may call: everything a consumer can run (not the coordinator's control tools). */
export const callableByAgent = (tool: Tool | undefined): tool is Tool =>
  tool !== undefined && tool.control === undefined;

export const agentTool = defineTool({
  name: "agent",
  description:
    "An LLM tool-use loop: the model works toward `goal`, calling the allowed `tools` (default: every tool but the " +
    "control tools and agent) until it answers. Every model turn and tool call is durable and runs once. Budgets: " +
    "max_turns (default 8), max_tokens (default 8000). Output {answer, turns, calls, tokens}. Needs an LLM provider.",
  inputSchema: z
    .object({
      goal: z.string().trim().min(1, "goal must not be empty").max(4000),
      tools: z.array(z.string().min(1).max(64)).min(1).max(32).optional(),
      max_turns: z.number().int().min(1).max(50).optional(),
      max_tokens: z.number().int().min(1).max(100_000).optional(),
    })
    .strict(),
  effects: { resource: null, mode: "none" },
  // Applied to each model turn: a provider's 429/5xx/timeout is retried.
  retry: DEFAULT_RETRY,
  control: "agent",
  needsLlm: true,
  check: (input, { tools }) =>
    (input.tools ?? []).flatMap((name, i) =>
      callableByAgent(tools.get(name))
        ? []
        : [{ path: `tools[${i}]`, message: `'${name}' is not a tool an agent can call` }],
    ),
  execute: async () => {
    throw nonRetryable("The agent loop is carried out by the run's coordinator");
  },
});
