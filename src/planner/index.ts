import type { PlanInput, PlannerKind } from "../contracts/plan";
import type { PlannerChoice } from "../contracts/run";
import { PromptParseError } from "./errors";
import { planWithRules } from "./rules";

export { PromptParseError };

export interface PlannerOutcome {
  planner: PlannerKind;
  plan: PlanInput;
  /** Why a preferred planner was not used (e.g. no LLM configured), recorded in the event log. */
  note?: string;
}

/** Raised when the requested planner cannot plan at all (e.g. `llm` without a provider). */
export class PlannerUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlannerUnavailableError";
  }
}

/**
 * Chooses a planner for a prompt. No LLM provider is wired in yet, so `auto` uses the rules
 * planner and `llm` fails the run with a clear reason.
 */
export function plan(prompt: string, choice: PlannerChoice): PlannerOutcome {
  if (choice === "llm") {
    throw new PlannerUnavailableError("The llm planner was requested but no LLM provider is configured");
  }
  const note = choice === "auto" ? "no LLM provider configured; used the rules planner" : undefined;
  return { planner: "rules", plan: planWithRules(prompt), note };
}
