import { z } from "zod";
import type { Json } from "../contracts/common";
import type { ToolDescriptor } from "../contracts/tool";
import { calculatorTool } from "./calculator";
import { httpGetTool } from "./http-get";
import { llmTool } from "./llm";
import { sleepTool } from "./sleep";
import { textTool } from "./text";
import { todoStoreTool } from "./todo-store";
import type { Tool } from "./types";

/** Every tool a plan may name. A Map so that `constructor` or `__proto__` is never a tool. */
export type ToolRegistry = ReadonlyMap<string, Tool>;

export const defaultRegistry: ToolRegistry = new Map<string, Tool>(
  [calculatorTool, todoStoreTool, textTool, sleepTool, httpGetTool, llmTool].map((t) => [t.name, t as Tool]),
);

/** The catalog entry of a tool, with its input schema as JSON Schema. */
export function describeTool(tool: Tool, breaker: ToolDescriptor["breaker"]): ToolDescriptor {
  return {
    name: tool.name,
    description: tool.description,
    input_schema: z.toJSONSchema(tool.inputSchema, { io: "input" }) as Record<string, Json>,
    effects: tool.effects,
    retry: tool.retry,
    breaker,
  };
}
