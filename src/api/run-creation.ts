import type { Context } from "hono";
import { IDEMPOTENCY_KEY_MESSAGE, idempotencyKeySchema, type Json } from "../contracts/common";
import type { Plan, PlanInput } from "../contracts/plan";
import type { RerunOf } from "../contracts/recovery";
import type { PlannerChoice, Run, RunOptions } from "../contracts/run";
import { ApiError } from "../http/problem";
import { llmProvider } from "../llm/config";
import { PlanValidationError, validatePlan } from "../plan/validate";
import { runStub } from "../run/stub";
import { readArchivedRun } from "../store/archive-read";
import { database } from "../store/db";
import { claimIdempotencyKey } from "../store/idempotency";
import { maxWaitingRuns } from "../tenancy/quotas";
import { defaultRegistry } from "../tools/registry";
import { uuidv7 } from "./ids";
import { bodyHashOf, principalOf } from "./middleware/auth";
import type { AppEnv } from "./types";
import { summarize } from "./validation";

/** The request's `Idempotency-Key`, or null; a malformed one is a 400. */
export function idempotencyKeyOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  if (!idempotencyKeySchema.safeParse(header).success) throw new ApiError(400, IDEMPOTENCY_KEY_MESSAGE);
  return header;
}

/**
 * Validates an explicit plan as the API does: 422 naming every problem, paths under `plan`.
 * `rename` maps a problem's path back to the field the client sent (a rerun's `tool_inputs`);
 * `untimed` steps skip time checks (a rerun's steps as the original had them: a timer whose time
 * has passed wakes at once); every other step's times are checked against now.
 */
export function validateExplicitPlan(
  c: Context<AppEnv>,
  input: PlanInput,
  finalGoal: string,
  opts: { rename?: (path: string) => string; untimed?: ReadonlySet<number> } = {},
): Plan {
  try {
    return validatePlan(input, defaultRegistry, {
      planId: crypto.randomUUID(),
      planner: "explicit",
      finalGoal: input.final_goal ?? finalGoal,
      pathPrefix: "plan",
      llm: llmProvider(c.env) !== null,
      ...(opts.untimed ? { untimed: opts.untimed } : {}),
    });
  } catch (err) {
    if (!(err instanceof PlanValidationError)) throw err;
    const errors = err.issues.map((i) => ({ ...i, path: opts.rename?.(i.path) ?? i.path }));
    throw new ApiError(422, summarize("plan", errors), { errors, type: "invalid-plan" });
  }
}

export interface NewRun {
  prompt: string;
  planner: PlannerChoice;
  options: RunOptions;
  plan: Plan | null;
  rerunOf: RerunOf | null;
  reuse: { fromRun: string; outputs: Record<string, Json> } | null;
  /** What the `Idempotency-Key` is checked against: the request body. */
  body: unknown;
}

/**
 * Creates a run (a new one, or a rerun) for the caller: claims the `Idempotency-Key` if one was
 * sent, then asks the run's coordinator to create it (which takes its place at the tenant's gate).
 * A replayed key answers with the run it names — from its coordinator, or from the D1 archive
 * once its storage was purged — and never runs it again.
 */
export async function startRun(c: Context<AppEnv>, spec: NewRun): Promise<Response> {
  const { tenant, quotas } = principalOf(c);
  const key = idempotencyKeyOf(c.req.header("Idempotency-Key"));
  const claim = key
    ? await claimIdempotencyKey(database(c.env.DB), tenant, key, await bodyHashOf(spec.body), uuidv7())
    : { runId: uuidv7(), replayed: false };
  if (claim === "conflict") {
    throw new ApiError(422, "Idempotency-Key was already used with a different body", { type: "idempotency-conflict" });
  }
  c.set("runId", claim.runId);
  const stub = runStub(c.env, tenant, claim.runId);
  const headers = { Location: `/api/v1/runs/${claim.runId}` };
  const replayed = { ...headers, "Idempotent-Replayed": "true" };
  if (claim.replayed) {
    const existing = (await stub.get()) ?? (await readArchivedRun(database(c.env.DB), tenant, claim.runId));
    if (existing) return c.json(existing, 201, replayed);
    // The key was claimed but its run never came to be (refused by a quota, or the request failed):
    // create it now. That is a new run, not a replay, unless a concurrent request with the same key
    // is creating it at this moment (the coordinator says which).
  }
  const created = await stub.create({
    runId: claim.runId,
    tenant,
    prompt: spec.prompt,
    planner: spec.planner,
    options: spec.options,
    plan: spec.plan,
    traceId: c.get("traceId"),
    requestId: c.get("requestId"),
    origin: new URL(c.req.url).origin,
    rerunOf: spec.rerunOf,
    reuse: spec.reuse,
    limits: { maxActive: quotas.maxActiveRuns, maxWaiting: maxWaitingRuns(c.env) },
  });
  if (!created.ok) {
    throw new ApiError(created.status, created.detail, {
      ...(created.status === 429 ? { headers: { "Retry-After": "5" }, type: "too-many-active-runs" } : {}),
    });
  }
  return c.json(created.value.run satisfies Run, 201, created.value.replayed ? replayed : headers);
}
