import type { Json } from "../contracts/common";
import { LIMITS } from "../contracts/limits";
import type { Plan, PlanInput, PlannerKind, PlanStep } from "../contracts/plan";
import type { ToolRegistry } from "../tools/registry";
import { orderConflictingSteps } from "./dag";
import { formatPath } from "./path";
import { findReferences, forEachString, wholeReference } from "./references";

export interface PlanIssue {
  path: string;
  message: string;
}

/** A plan that breaks a rule: the list says every problem found, each with its field. */
export class PlanValidationError extends Error {
  constructor(readonly issues: PlanIssue[]) {
    super(issues[0]?.message ?? "Invalid plan");
    this.name = "PlanValidationError";
  }
}

const byteLength = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).length;

/** Paths (as formatted strings) of strings that are exactly one reference: their type is known only at run time. */
function referencePaths(input: Json): Set<string> {
  const paths = new Set<string>();
  forEachString(input, (s, path) => {
    if (wholeReference(s)) paths.add(formatPath(path));
  });
  return paths;
}

/** Finds a cycle in `deps` (step → its dependencies), returning its steps, or null. */
function findCycle(deps: ReadonlyMap<number, ReadonlySet<number>>): number[] | null {
  const state = new Map<number, "visiting" | "done">();
  const stack: number[] = [];
  const visit = (n: number): number[] | null => {
    if (state.get(n) === "done") return null;
    if (state.get(n) === "visiting") return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, "visiting");
    stack.push(n);
    for (const d of deps.get(n) ?? []) {
      const cycle = visit(d);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(n, "done");
    return null;
  };
  for (const n of deps.keys()) {
    const cycle = visit(n);
    if (cycle) return cycle;
  }
  return null;
}

export interface ValidateOptions {
  planId: string;
  planner: PlannerKind;
  finalGoal: string;
  /** Prefix for issue paths: `plan` for a request body, empty for a planner's output. */
  pathPrefix?: string;
  /** Whether an LLM provider is configured: without one, steps of tools that need it are refused. */
  llm: boolean;
  /** Steps whose time checks (such as `wait.until`, against now) are skipped: a rerun's steps as the original had them (passed times wake at once). */
  untimed?: ReadonlySet<number>;
}

export const NO_LLM_PROVIDER = "no LLM provider is configured";

/**
 * Problems of one tool call's input against its tool: the schema (fields that are exactly a
 * reference are checked at run time, once their value is known), the tool's own checks, and
 * whether its tool can run here.
 */
function inputIssues(
  toolName: string,
  input: Record<string, Json>,
  registry: ToolRegistry,
  opts: ValidateOptions,
  at: (...segments: (string | number)[]) => string,
  where: (string | number)[],
  timed = true,
): PlanIssue[] {
  const issues: PlanIssue[] = [];
  const tool = registry.get(toolName);
  if (!tool) {
    const known = [...registry.keys()].join(", ");
    return [{ path: at(...where, "tool_name"), message: `unknown tool '${toolName}' (known: ${known})` }];
  }
  if (tool.needsLlm && !opts.llm) {
    issues.push({ path: at(...where, "tool_name"), message: `${toolName} needs an LLM provider: ${NO_LLM_PROVIDER}` });
  }
  if (byteLength(input) > LIMITS.maxToolInputBytes) {
    issues.push({
      path: at(...where, "tool_input"),
      message: `tool_input must be at most ${LIMITS.maxToolInputBytes} bytes as JSON`,
    });
    return issues;
  }
  const refs = findReferences(input).length;
  if (refs > LIMITS.maxReferencesPerStep) {
    issues.push({
      path: at(...where, "tool_input"),
      message: `tool_input holds ${refs} references; at most ${LIMITS.maxReferencesPerStep} are allowed`,
    });
  }
  const refPaths = referencePaths(input);
  const parsed = tool.inputSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (refPaths.has(formatPath(issue.path))) continue;
      issues.push({ path: at(...where, "tool_input", ...(issue.path as (string | number)[])), message: issue.message });
    }
  } else if (tool.check) {
    const now = timed ? Date.now() : null;
    for (const problem of tool.check(parsed.data, { now, tools: registry })) {
      issues.push({ path: `${at(...where, "tool_input")}.${problem.path}`, message: problem.message });
    }
  }
  return issues;
}

/**
 * Checks a plan against the tool registry and the DAG rules, and returns it normalised:
 * steps ordered by `step_number`, each `depends_on` holding every dependency the run will
 * enforce (explicit, from references, and from resource conflicts).
 *
 * @throws PlanValidationError listing every problem found.
 */
export function validatePlan(input: PlanInput, registry: ToolRegistry, opts: ValidateOptions): Plan {
  const issues: PlanIssue[] = [];
  const at = (...segments: (string | number)[]) =>
    formatPath(opts.pathPrefix ? [opts.pathPrefix, ...segments] : segments);

  if (input.steps.length === 0) issues.push({ path: at("steps"), message: "plan must have at least one step" });
  if (input.steps.length > LIMITS.maxSteps) {
    issues.push({ path: at("steps"), message: `plan must have at most ${LIMITS.maxSteps} steps` });
  }

  const numbers = new Map<number, number>();
  input.steps.forEach((s, i) => {
    if (numbers.has(s.step_number)) {
      issues.push({ path: at("steps", i, "step_number"), message: `step_number ${s.step_number} is used twice` });
    } else numbers.set(s.step_number, i);
  });

  const deps = new Map<number, Set<number>>();
  input.steps.forEach((step, i) => {
    const own = new Set<number>();
    deps.set(step.step_number, own);
    const timed = !opts.untimed?.has(step.step_number);
    issues.push(...inputIssues(step.tool_name, step.tool_input, registry, opts, at, ["steps", i], timed));
    if (step.compensate) {
      const where = ["steps", i, "compensate"];
      if (registry.get(step.compensate.tool_name)?.control) {
        issues.push({ path: at(...where, "tool_name"), message: `${step.compensate.tool_name} cannot undo a step` });
      } else {
        issues.push(
          ...inputIssues(step.compensate.tool_name, step.compensate.tool_input, registry, opts, at, where, timed),
        );
      }
      // A compensation may name any step's output, its own step's included; it adds no dependency.
      for (const ref of findReferences(step.compensate.tool_input)) {
        if (!numbers.has(ref.step)) {
          issues.push({
            path: at(...where, "tool_input"),
            message: `reference to step ${ref.step}, which does not exist`,
          });
        }
      }
    }
    (step.depends_on ?? []).forEach((d, j) => {
      if (d === step.step_number) {
        issues.push({ path: at("steps", i, "depends_on", j), message: `step ${d} cannot depend on itself` });
      } else if (!numbers.has(d)) {
        issues.push({
          path: at("steps", i, "depends_on", j),
          message: `depends_on names step ${d}, which does not exist`,
        });
      } else own.add(d);
    });
    for (const ref of findReferences(step.tool_input)) {
      if (ref.step === step.step_number) {
        issues.push({
          path: at("steps", i, "tool_input"),
          message: `step ${ref.step} cannot reference its own output`,
        });
      } else if (!numbers.has(ref.step)) {
        issues.push({
          path: at("steps", i, "tool_input"),
          message: `reference to step ${ref.step}, which does not exist`,
        });
      } else own.add(ref.step);
    }
  });

  if (issues.length === 0) {
    const cycle = findCycle(deps);
    if (cycle) {
      issues.push({ path: at("steps"), message: `dependency cycle between steps ${cycle.join(" → ")}` });
    }
  }
  if (issues.length > 0) throw new PlanValidationError(issues);

  const effects = input.steps.map((s) => {
    const tool = registry.get(s.tool_name);
    const mode = tool?.modeFor?.(s.tool_input) ?? tool?.effects.mode ?? "none";
    return { step: s.step_number, resource: tool?.effects.resource ?? null, mode };
  });
  for (const [later, earlier] of orderConflictingSteps(effects, deps)) deps.get(later)?.add(earlier);

  const steps: PlanStep[] = [...input.steps]
    .sort((a, b) => a.step_number - b.step_number)
    .map(({ reasoning, depends_on: _explicit, ...rest }) => ({
      ...rest,
      reasoning: reasoning ?? "",
      depends_on: [...(deps.get(rest.step_number) ?? [])].sort((a, b) => a - b),
    }));
  return { plan_id: opts.planId, planner: opts.planner, final_goal: opts.finalGoal, steps };
}
