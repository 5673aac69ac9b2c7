import type { Tool } from "./types";

/**
 * A step's input parsed by its tool's schema, or the one sentence the step fails with when it does
 * not fit (`Invalid input for calculator: expression: …`). One wording for every way a step starts:
 * a tool attempt, a wait, an agent loop.
 */
export function parseToolInput(
  tool: Tool,
  input: unknown,
): { ok: true; data: unknown } | { ok: false; message: string } {
  const parsed = tool.inputSchema.safeParse(input);
  if (parsed.success) return { ok: true, data: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
  return { ok: false, message: `Invalid input for ${tool.name}: ${where}${issue?.message}` };
}
