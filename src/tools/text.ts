import { z } from "zod";
import { DEFAULT_RETRY, defineTool } from "./types";

const OPERATIONS = {
  uppercase: (s: string) => s.toUpperCase(),
  lowercase: (s: string) => s.toLowerCase(),
  reverse: (s: string) => Array.from(s).reverse().join(""),
  trim: (s: string) => s.trim(),
  word_count: (s: string) => s.split(/\s+/).filter((w) => w.length > 0).length,
  char_count: (s: string) => Array.from(s).length,
} as const;

export const textTool = defineTool({
  name: "text",
  description: "Transforms or measures text: uppercase, lowercase, reverse, trim, word_count, char_count.",
  inputSchema: z
    .object({
      operation: z.enum(["uppercase", "lowercase", "reverse", "word_count", "char_count", "trim"]),
      text: z.string().max(10_000),
    })
    .strict(),
  effects: { resource: null, mode: "none" },
  retry: DEFAULT_RETRY,
  execute: async ({ operation, text }) => OPERATIONS[operation](text),
  executeInline: ({ operation, text }) => OPERATIONS[operation](text),
});
