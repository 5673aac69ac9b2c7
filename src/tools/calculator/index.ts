import { z } from "zod";
import { DEFAULT_RETRY, defineTool } from "../types";
import { evaluate, MAX_EXPRESSION_CHARS } from "./evaluate";

export const calculatorTool = defineTool({
  name: "calculator",
  description:
    "Evaluates an arithmetic expression: numbers, + - * / % ^ **, parentheses, unary signs, " +
    "functions sqrt abs round floor ceil min max log exp sin cos tan, constants pi and e.",
  inputSchema: z
    .object({
      expression: z.string().min(1).max(MAX_EXPRESSION_CHARS),
    })
    .strict(),
  effects: { resource: null, mode: "none" },
  retry: DEFAULT_RETRY,
  execute: async ({ expression }) => evaluate(expression),
  executeInline: ({ expression }) => evaluate(expression),
});
