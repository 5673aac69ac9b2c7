import type { RunEvent } from "../contracts/run";
import { PlanValidationError, validatePlan } from "../plan/validate";
import { plan as planPrompt } from "../planner";
import type { ToolRegistry } from "../tools/registry";
import type { CreateRunCommand } from "./coordinator";
import type { EventDraft } from "./events";

/** The `run.created` event of a new run. */
export function createdEvent(cmd: CreateRunCommand, now: number): RunEvent {
  return {
    seq: 1,
    type: "run.created",
    at: new Date(now).toISOString(),
    data: {
      run_id: cmd.runId,
      tenant: cmd.tenant,
      prompt: cmd.prompt,
      planner: cmd.planner,
      options: cmd.options,
      trace_id: cmd.traceId,
    },
  };
}

/**
 * Plans a new run: the explicit plan as given (the API validated it), or the planner's plan
 * validated like an explicit one. A prompt that cannot be planned fails the run (API.md: the
 * POST still answers 201, with `error` starting "Could not parse prompt").
 */
export function planEvents(cmd: CreateRunCommand, registry: ToolRegistry): EventDraft[] {
  if (cmd.plan) return [{ type: "run.planned", data: { plan: cmd.plan } }];
  try {
    const outcome = planPrompt(cmd.prompt, cmd.planner);
    const plan = validatePlan(outcome.plan, registry, {
      planId: crypto.randomUUID(),
      planner: outcome.planner,
      finalGoal: outcome.plan.final_goal ?? cmd.prompt,
    });
    return [{ type: "run.planned", data: { plan, ...(outcome.note ? { note: outcome.note } : {}) } }];
  } catch (err) {
    const error =
      err instanceof PlanValidationError
        ? `Could not parse prompt: the planned steps are invalid (${err.issues.map((i) => `${i.path}: ${i.message}`).join("; ")})`
        : err instanceof Error
          ? err.message
          : String(err);
    return [{ type: "run.failed", data: { error } }];
  }
}
