import { z } from "zod";
import type { Json } from "../contracts/common";
import type { ToolDescriptor } from "../contracts/tool";
import { agentTool } from "./agent";
import { calculatorTool } from "./calculator";
import { approvalTool, signalTool, waitTool } from "./control";
import { httpGetTool } from "./http-get";
import { llmTool } from "./llm";
import { sleepTool } from "./sleep";
import { textTool } from "./text";
import { todoStoreTool } from "./todo-store";
import type { Tool } from "./types";

/** Every tool a plan may name. A Map so that `constructor` or `__proto__` is never a tool. */
export type ToolRegistry = ReadonlyMap<string, Tool>;

export const defaultRegistry: ToolRegistry = new Map<string, Tool>(
  [
    calculatorTool,
    todoStoreTool,
    textTool,
    sleepTool,
    httpGetTool,
    llmTool,
    waitTool,
    approvalTool,
    signalTool,
    agentTool,
  ].map((t) => [t.name, t as Tool]),
);

/** The catalog entry of a tool, with its input schema as JSON Schema. */
/**
 * A tool's input as JSON Schema with `"type": "object"` at the top, as MCP tool schemas and
 * OpenAI function parameters require; a union of per-action objects keeps its exact `oneOf` /
 * `anyOf` beneath.
 */
export function inputJsonSchema(tool: Tool): Record<string, Json> {
  const schema = z.toJSONSchema(tool.inputSchema, { io: "input" }) as Record<string, Json>;
  return schema.type === "object" ? schema : { type: "object", ...schema };
}

export function describeTool(tool: Tool, breaker: ToolDescriptor["breaker"]): ToolDescriptor {
  return {
    name: tool.name,
    description: tool.description,
    input_schema: inputJsonSchema(tool),
    effects: tool.effects,
    retry: tool.retry,
    breaker,
  };
}
