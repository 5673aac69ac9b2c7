import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { z } from "zod";
import { type SignalIdempotency, sameBody } from "../../contracts/body-hash";
import type { Json } from "../../contracts/common";
import { cancelBodySchema } from "../../contracts/recovery";
import { runIdParamSchema, runSchema } from "../../contracts/run";
import {
  approveBodySchema,
  rejectBodySchema,
  type SignalAnswer,
  signalAnswerSchema,
  signalBodySchema,
  signalNameParamSchema,
} from "../../contracts/waiting";
import { ApiError } from "../../http/problem";
import type { Result, RunApi } from "../../run/api";
import { runStub } from "../../run/stub";
import { readArchivedEvents, readArchivedRun } from "../../store/archive-read";
import { database } from "../../store/db";
import { bodyHashOf, principalOf } from "../middleware/auth";
import { json, problem } from "../responses";
import { idempotencyKeyOf } from "../run-creation";
import type { AppEnv } from "../types";
import { validationHook } from "../validation";
import { tenantRoute } from "./define";
import { isRunId, runNotFound } from "./runs";

const stepParamSchema = runIdParamSchema.extend({
  step_number: z
    .string()
    .regex(/^\d{1,5}$/, "step_number must be a whole number: the number of a step of the run's plan")
    .transform(Number)
    .meta({ param: { name: "step_number", in: "path" }, example: "2" }),
});

const conflict = (description: string) => ({ 404: problem("No such run or step"), 409: problem(description) });

const cancelRun = tenantRoute({
  method: "post",
  path: "/runs/{run_id}/cancel",
  summary: "Cancel a run that has not finished; with {compensate: true}, undo what succeeded first",
  request: {
    params: runIdParamSchema,
    body: { required: false, content: { "application/json": { schema: cancelBodySchema } } },
  },
  responses: {
    200: json(runSchema, "The run: cancelled, or compensating before it ends cancelled"),
    ...conflict("The run already finished, or is compensating"),
  },
});

const approveStep = tenantRoute({
  method: "post",
  path: "/runs/{run_id}/steps/{step_number}/approve",
  summary: "Approve a waiting approval step",
  request: {
    params: stepParamSchema,
    body: { required: false, content: { "application/json": { schema: approveBodySchema } } },
  },
  responses: {
    200: json(runSchema, "The run, the step approved"),
    ...conflict("Not an approval step, not waiting yet, already decided, or the run finished (the detail says which)"),
  },
});

const rejectStep = tenantRoute({
  method: "post",
  path: "/runs/{run_id}/steps/{step_number}/reject",
  summary: "Reject a waiting approval step: it fails, not retried, and the run's on_failure policy applies",
  request: {
    params: stepParamSchema,
    body: { required: false, content: { "application/json": { schema: rejectBodySchema } } },
  },
  responses: {
    200: json(runSchema, "The run, the step rejected"),
    ...conflict("Not an approval step, not waiting yet, already decided, or the run finished (the detail says which)"),
  },
});

const sendSignal = tenantRoute(
  {
    method: "post",
    path: "/runs/{run_id}/signals/{name}",
    summary: "Send a named signal: completes the step waiting for it, or is kept for one that will",
    description: "`Idempotency-Key` works as on POST /runs: a replay answers 202 with the same answer.",
    request: {
      params: runIdParamSchema.extend(signalNameParamSchema.shape),
      body: { required: false, content: { "application/json": { schema: signalBodySchema } } },
    },
    responses: {
      202: json(signalAnswerSchema, "Accepted: delivered to a step, or buffered for one"),
      ...conflict("No unfinished step waits for that signal, or the run finished"),
    },
  },
  { idempotent: true },
);

export const controlRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

/**
 * Sends a command to the caller's run and turns a refusal into its problem. A run whose storage
 * is gone after retention is finished: commands on it are 409, like on any finished run — but a
 * step it does not have is 404 (`step`), as it was before the storage went, and `replay` may
 * answer from the archived log what the run answered before (an idempotent signal's replay).
 */
async function command<T>(
  c: Context<AppEnv>,
  runId: string,
  send: (run: RunApi) => Promise<Result<T>>,
  opts: { step?: number; replay?: (tenant: string) => Promise<T | null> } = {},
): Promise<T> {
  const { step, replay } = opts;
  const { tenant } = principalOf(c);
  if (!isRunId(runId)) throw runNotFound(runId);
  const result = await send(runStub(c.env, tenant, runId));
  if (result.ok) return result.value;
  if (result.status === 404 && result.detail === "Run not found") {
    const archived = await readArchivedRun(database(c.env.DB), tenant, runId);
    if (!archived) throw runNotFound(runId);
    if (step !== undefined && !archived.plan?.steps.some((s) => s.step_number === step)) {
      throw new ApiError(404, `Run '${runId}' has no step ${step}`);
    }
    const replayed = replay ? await replay(tenant) : null;
    if (replayed !== null) return replayed;
    throw new ApiError(409, `Run '${runId}' already finished with status ${archived.status}`);
  }
  throw new ApiError(result.status, result.detail);
}

/**
 * A signal's replay on a run served from the archive: the answer it got, read from its
 * `signal.received` event, as the run's object gave it before its storage went; null when the
 * key was not used on this run. The same key with another body → 422.
 */
async function archivedSignal(
  c: Context<AppEnv>,
  tenant: string,
  runId: string,
  idempotency: SignalIdempotency,
): Promise<(SignalAnswer & { replayed: true }) | null> {
  const events = await readArchivedEvents(database(c.env.DB), tenant, runId, 0, Number.MAX_SAFE_INTEGER);
  const received = events?.find((e) => e.type === "signal.received" && e.data?.idempotency_key === idempotency.key);
  if (!received?.data) return null;
  if (!sameBody(String(received.data.body_hash), idempotency.body)) {
    throw new ApiError(422, "Idempotency-Key was already used with a different signal");
  }
  const delivered = typeof received.data.delivered_to === "number" ? received.data.delivered_to : null;
  return {
    run_id: runId,
    name: String(received.data.name),
    delivered_to: delivered,
    buffered: delivered === null,
    replayed: true,
  };
}

const bodyOf = <T>(c: { req: { valid(target: "json"): unknown } }): Partial<T> =>
  (c.req.valid("json") as T | undefined) ?? {};

controlRoutes.openapi(cancelRun, async (c) => {
  const { run_id } = c.req.valid("param");
  const body = bodyOf<z.infer<typeof cancelBodySchema>>(c);
  const reason = body.reason?.trim() || "Cancelled by request";
  return c.json(await command(c, run_id, (run) => run.cancel(reason, body.compensate === true)), 200);
});

controlRoutes.openapi(approveStep, async (c) => {
  const { run_id, step_number } = c.req.valid("param");
  const body = bodyOf<z.infer<typeof approveBodySchema>>(c);
  return c.json(await command(c, run_id, (run) => run.approve(step_number, body), { step: step_number }), 200);
});

controlRoutes.openapi(rejectStep, async (c) => {
  const { run_id, step_number } = c.req.valid("param");
  const body = bodyOf<z.infer<typeof rejectBodySchema>>(c);
  return c.json(await command(c, run_id, (run) => run.reject(step_number, body.reason), { step: step_number }), 200);
});

controlRoutes.openapi(sendSignal, async (c) => {
  const { run_id, name } = c.req.valid("param");
  const body = bodyOf<z.infer<typeof signalBodySchema>>(c);
  const key = idempotencyKeyOf(c.req.header("Idempotency-Key"));
  const idempotency = key ? { key, body: await bodyHashOf({ name, data: body.data ?? null }) } : null;
  const { replayed, ...answer } = await command(
    c,
    run_id,
    (run) => run.signal(name, (body.data ?? null) as Json, idempotency),
    { replay: idempotency ? (tenant) => archivedSignal(c, tenant, run_id, idempotency) : undefined },
  );
  return c.json(answer, 202, replayed ? { "Idempotent-Replayed": "true" } : {});
});
