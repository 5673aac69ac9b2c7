import type { Tool } from "./types";

/**
 * A step's input parsed by its tool's schema, or the one sentence the step fails with when it does
 * not fit (`Invalid input for calculator: expression: …`). One wording for every way a step starts:
 * a tool attempt, a wait, an agent loop. With `checks`, the tool's own checks too (`Tool.check`),
 * made at `now`: for input whose references resolved only now, which plan validation could not.
 */
export function parseToolInput(
  tool: Tool,
  input: unknown,
  checks?: { now: number; tools: ReadonlyMap<string, Tool> },
): { ok: true; data: unknown } | { ok: false; message: string } {
  const parsed = tool.inputSchema.safeParse(input);
  const invalid = (path: readonly PropertyKey[] | string, message: string | undefined) => {
    const where = path.length ? `${typeof path === "string" ? path : path.join(".")}: ` : "";
    return { ok: false as const, message: `Invalid input for ${tool.name}: ${where}${message}` };
  };
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return invalid(issue?.path ?? [], issue?.message);
  }
  // The tool's own checks (a time in the future): for input known only now, its references resolved.
  const problem = checks && tool.check ? tool.check(parsed.data as never, checks)[0] : undefined;
  return problem ? invalid(problem.path, problem.message) : { ok: true, data: parsed.data };
}
