import { z } from "zod";
import { LIMITS } from "../contracts/limits";
import { signalNameSchema } from "../contracts/waiting";
import { nonRetryable } from "./errors";
import { DEFAULT_RETRY, defineTool } from "./types";

const waitMs = (name: string, min: number) =>
  z
    .number()
    .int(`${name} must be an integer`)
    .min(min, `${name} must be at least ${min}`)
    .max(LIMITS.maxWaitMs, `${name} must be at most ${LIMITS.maxWaitMs} (365 days)`);

const coordinatorOnly = async (): Promise<never> => {
  throw nonRetryable("This tool is carried out by the run's coordinator, not by a consumer");
};

/** `until` must lie in the future and within 365 days of `now` (checked when the plan is validated). */
export function untilProblem(until: string, now: number): string | null {
  const at = Date.parse(until);
  if (at <= now) return "until must be in the future";
  if (at - now > LIMITS.maxWaitMs) return "until must be at most 365 days ahead";
  return null;
}

export const waitTool = defineTool({
  name: "wait",
  description:
    "A durable timer: waits `ms` milliseconds (up to 365 days) or `until` an ISO-8601 time, holding nothing while it waits. " +
    "Output {waited_ms, woke_at}.",
  // One object with both keys optional and exactly one given, not a union of two: a bad value is
  // named by its own field (`ms: ms must be an integer`), and a field that is a reference
  // (`{{steps.1.output}}`) is checked at run time like any other tool's.
  inputSchema: z
    .object({
      ms: waitMs("ms", 1).optional(),
      until: z.iso.datetime({ offset: true, error: "until must be an ISO-8601 timestamp" }).optional(),
    })
    .strict()
    .refine((i) => (i.ms === undefined) !== (i.until === undefined), "wait takes either ms or until, exactly one")
    .meta({ description: "Exactly one of ms or until." }),
  effects: { resource: null, mode: "none" },
  retry: DEFAULT_RETRY,
  control: "timer",
  check: (input, { now }) => {
    const problem = input.until !== undefined && now !== null ? untilProblem(input.until, now) : null;
    return problem ? [{ path: "until", message: problem }] : [];
  },
  execute: coordinatorOnly,
});

export const approvalTool = defineTool({
  name: "approval",
  description:
    "Waits for a person to approve or reject (API, console, or the step's callback URL). Approved: output " +
    "{approved, comment, data, decided_at, decided_by}. Rejected or timed out (on_timeout reject): the step fails, not retried.",
  inputSchema: z
    .object({
      message: z.string().trim().min(1, "message must not be empty").max(LIMITS.maxMessageChars),
      timeout_ms: waitMs("timeout_ms", 1000).optional(),
      on_timeout: z.enum(["reject", "approve"]).optional(),
    })
    .strict(),
  effects: { resource: null, mode: "none" },
  retry: DEFAULT_RETRY,
  control: "approval",
  execute: coordinatorOnly,
});

export const signalTool = defineTool({
  name: "signal",
  description:
    "Waits for a named signal (POST …/signals/{name}, or the step's callback URL); a signal sent before the step " +
    "waits is kept for it. Output {name, data, received_at}; a timeout fails the step, not retried.",
  inputSchema: z.object({ name: signalNameSchema, timeout_ms: waitMs("timeout_ms", 1000).optional() }).strict(),
  effects: { resource: null, mode: "none" },
  retry: DEFAULT_RETRY,
  control: "signal",
  execute: coordinatorOnly,
});
