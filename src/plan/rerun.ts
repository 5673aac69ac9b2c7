import type { Json } from "../contracts/common";
import type { Plan, PlanInput, PlanStep } from "../contracts/plan";
import type { RerunBody } from "../contracts/recovery";
import type { ExecutionLogEntry } from "../contracts/run";
import type { PlanIssue } from "./validate";

/**
 * The plan a rerun runs: the original's steps (with their dependencies, compensations and
 * policies), with `tool_inputs` applied. Problems (a `from_step` or override key that is not a
 * step) are returned, not thrown, so the API answers them as one 422 with the plan's own problems.
 */
export function rerunPlanInput(original: Plan, body: RerunBody): { input: PlanInput; issues: PlanIssue[] } {
  const numbers = new Set(original.steps.map((s) => s.step_number));
  const issues: PlanIssue[] = [];
  if (body.from_step !== undefined && !numbers.has(body.from_step)) {
    issues.push({ path: "from_step", message: `from_step ${body.from_step} is not a step of the run's plan` });
  }
  for (const key of Object.keys(body.tool_inputs ?? {})) {
    if (!numbers.has(Number(key))) {
      issues.push({ path: `tool_inputs.${key}`, message: `step ${key} is not a step of the run's plan` });
    }
  }
  const steps = original.steps.map(
    ({ step_number, tool_name, tool_input, reasoning, depends_on, ...rest }: PlanStep) => ({
      step_number,
      tool_name,
      tool_input: body.tool_inputs?.[String(step_number)] ?? tool_input,
      reasoning,
      depends_on,
      ...rest,
    }),
  );
  return { input: { steps, final_goal: original.final_goal }, issues };
}

/** Every step that depends, directly or through others, on one of `roots` (the roots included). */
export function downstreamOf(plan: Plan, roots: Iterable<number>): Set<number> {
  const dependants = new Map<number, number[]>();
  for (const s of plan.steps) {
    for (const d of s.depends_on) dependants.set(d, [...(dependants.get(d) ?? []), s.step_number]);
  }
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const n = stack.pop() as number;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...(dependants.get(n) ?? []));
  }
  return seen;
}

/**
 * The outputs a rerun keeps from the original: each step that succeeded there and is neither
 * `from_step`, nor overridden, nor downstream of one of those in the new plan. Without `from_step`
 * that is every success not downstream of an override: what did not succeed (and its dependants,
 * which cannot have succeeded) runs again.
 */
export function reusableOutputs(
  plan: Plan,
  log: readonly ExecutionLogEntry[],
  fromStep: number | null,
  overridden: Iterable<number>,
): Record<string, Json> {
  const rerun = downstreamOf(plan, [...(fromStep === null ? [] : [fromStep]), ...overridden]);
  const out: Record<string, Json> = {};
  for (const entry of log) {
    if (
      entry.status === "succeeded" &&
      !rerun.has(entry.step_number) &&
      plan.steps.some((s) => s.step_number === entry.step_number)
    ) {
      out[String(entry.step_number)] = entry.output;
    }
  }
  return out;
}
