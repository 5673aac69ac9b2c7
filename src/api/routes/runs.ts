import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { listRunsQuerySchema, runSummarySchema } from "../../contracts/history";
import type { Plan } from "../../contracts/plan";
import {
  afterParamSchema,
  createRunBodySchema,
  eventsQuerySchema,
  type Run,
  runEventSchema,
  runIdParamSchema,
  runSchema,
} from "../../contracts/run";
import { PlanValidationError, validatePlan } from "../../plan/validate";
import { archivedLiveResponse } from "../../run/live";
import { runStub } from "../../run/stub";
import { readArchivedEvents, readArchivedRun } from "../../store/archive-read";
import { database } from "../../store/db";
import { claimIdempotencyKey } from "../../store/idempotency";
import { decodeCursor, listRuns } from "../../store/runs-query";
import { gateStub } from "../../tenancy/gate";
import { defaultRegistry } from "../../tools/registry";
import { uuidv7 } from "../ids";
import { sha256Hex } from "../middleware/auth";
import { ApiError } from "../problem";
import { json, problem } from "../responses";
import type { AppEnv } from "../types";
import { summarize, validationHook } from "../validation";

const security = [{ bearer: [] }];

const createRun = createRoute({
  method: "post",
  path: "/runs",
  summary: "Create a run: plan the prompt (or take an explicit plan) and start executing it",
  security,
  request: { body: { required: true, content: { "application/json": { schema: createRunBodySchema } } } },
  responses: {
    201: { ...json(runSchema, "The run, planned and started"), headers: { Location: { schema: { type: "string" } } } },
    400: problem("Malformed JSON"),
    401: problem("Missing or unknown API key"),
    413: problem("Body too large"),
    415: problem("Body is not JSON"),
    422: problem("The body or the explicit plan is invalid"),
  },
});

const getRun = createRoute({
  method: "get",
  path: "/runs/{run_id}",
  summary: "Get a run with its plan and execution log",
  security,
  request: { params: runIdParamSchema },
  responses: { 200: json(runSchema, "The run"), 401: problem("Unauthorized"), 404: problem("No such run") },
});

const getEvents = createRoute({
  method: "get",
  path: "/runs/{run_id}/events",
  summary: "The run's append-only event log, in order",
  security,
  request: { params: runIdParamSchema, query: eventsQuerySchema },
  responses: {
    200: json(z.array(runEventSchema), "Events with seq > after"),
    400: problem("Bad query parameter"),
    401: problem("Unauthorized"),
    404: problem("No such run"),
  },
});

const cancelRun = createRoute({
  method: "post",
  path: "/runs/{run_id}/cancel",
  summary: "Cancel a run that has not finished",
  security,
  request: { params: runIdParamSchema },
  responses: {
    200: json(runSchema, "The cancelled run"),
    401: problem("Unauthorized"),
    404: problem("No such run"),
    409: problem("The run already finished"),
  },
});

const liveQuerySchema = z.object({ after: afterParamSchema.optional() });

const liveRun = createRoute({
  method: "get",
  path: "/runs/{run_id}/live",
  summary: "WebSocket: a snapshot, then every event of the run in order (API.md, Live updates)",
  description:
    "Upgrade with `Upgrade: websocket`. Browsers may authenticate with the subprotocol `bearer.<key>` next to `crane.v1`. " +
    "The server sends `{type:'snapshot', run, seq}`, then the events after `after` (when given), then each new event as " +
    "`{type:'event', event}`; it closes with 1000 after the run's terminal event.",
  security,
  request: { params: runIdParamSchema, query: liveQuerySchema },
  responses: {
    101: { description: "Switching Protocols: the live stream" },
    400: problem("Bad query parameter"),
    401: problem("Unauthorized"),
    404: problem("No such run"),
    426: problem("Not a WebSocket upgrade"),
    429: problem("Too many live connections to this run"),
  },
});

const listRunsRoute = createRoute({
  method: "get",
  path: "/runs",
  summary: "List runs, newest first (in-flight runs too), with filters and cursor pagination",
  security,
  request: { query: listRunsQuerySchema },
  responses: {
    200: {
      ...json(z.array(runSummarySchema), "A page of runs"),
      headers: { Link: { schema: { type: "string" }, description: 'rel="next" when more runs exist' } },
    },
    400: problem("Bad query parameter"),
    401: problem("Unauthorized"),
  },
});

const notFound = (runId: string) => new ApiError(404, `Run '${runId}' not found`);

export const runRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

const MAX_IDEMPOTENCY_KEY = 255;

function idempotencyKeyOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  if (
    header.length === 0 ||
    header.length > MAX_IDEMPOTENCY_KEY ||
    ![...header].every((ch) => ch >= " " && ch <= "~")
  ) {
    throw new ApiError(400, `Idempotency-Key must be 1–${MAX_IDEMPOTENCY_KEY} printable ASCII characters`);
  }
  return header;
}

runRoutes.openapi(createRun, async (c) => {
  const body = c.req.valid("json");
  const { tenant, quotas } = c.get("principal");
  const idempotencyKey = idempotencyKeyOf(c.req.header("Idempotency-Key"));
  let plan: Plan | null = null;
  if (body.plan) {
    try {
      plan = validatePlan(body.plan, defaultRegistry, {
        planId: crypto.randomUUID(),
        planner: "explicit",
        finalGoal: body.plan.final_goal ?? body.prompt,
        pathPrefix: "plan",
      });
    } catch (err) {
      if (!(err instanceof PlanValidationError)) throw err;
      throw new ApiError(422, summarize("plan", err.issues), { errors: err.issues, type: "invalid-plan" });
    }
  }

  const claim = idempotencyKey
    ? await claimIdempotencyKey(
        database(c.env.DB),
        tenant,
        idempotencyKey,
        await sha256Hex(JSON.stringify(body)),
        uuidv7(),
      )
    : { runId: uuidv7(), replayed: false };
  if (claim === "conflict") {
    throw new ApiError(422, "Idempotency-Key was already used with a different body", { type: "idempotency-conflict" });
  }
  const stub = runStub(c.env, tenant, claim.runId);
  const location = { Location: `/api/v1/runs/${claim.runId}` };
  if (claim.replayed) {
    const existing = await stub.get();
    if (existing) return c.json(existing, 201, { ...location, "Idempotent-Replayed": "true" });
  }

  const gate = gateStub(c.env, tenant);
  const slot = await gate.acquireRun(claim.runId, quotas.maxActiveRuns);
  if (!slot.allowed) {
    throw new ApiError(
      429,
      `Tenant '${tenant}' already has ${slot.active} active runs, its limit; retry when one finishes`,
      {
        headers: { "Retry-After": "5" },
        type: "too-many-active-runs",
      },
    );
  }
  let run: Run;
  try {
    run = await stub.create({
      runId: claim.runId,
      tenant,
      prompt: body.prompt,
      planner: body.planner,
      options: body.options,
      plan,
      traceId: c.get("traceId"),
    });
  } catch (err) {
    await gate.releaseRun(claim.runId);
    throw err;
  }
  return c.json(run, 201, claim.replayed ? { ...location, "Idempotent-Replayed": "true" } : location);
});

runRoutes.openapi(listRunsRoute, async (c) => {
  const query = c.req.valid("query");
  const after = query.cursor === undefined ? null : decodeCursor(query.cursor);
  if (query.cursor !== undefined && !after)
    throw new ApiError(400, "cursor is not valid: pass the value from a Link header");
  const page = await listRuns(database(c.env.DB), c.get("tenant"), query, after);
  if (page.next) {
    const url = new URL(c.req.url);
    url.searchParams.delete("offset");
    url.searchParams.set("cursor", page.next);
    c.header("Link", `<${url.pathname}${url.search}>; rel="next"`);
  }
  return c.json(page.runs, 200);
});

// A run whose coordinator deleted its storage after the retention period is served from D1.

runRoutes.openapi(getRun, async (c) => {
  const { run_id } = c.req.valid("param");
  const tenant = c.get("tenant");
  const run =
    (await runStub(c.env, tenant, run_id).get()) ?? (await readArchivedRun(database(c.env.DB), tenant, run_id));
  if (!run) throw notFound(run_id);
  return c.json(run, 200);
});

runRoutes.openapi(getEvents, async (c) => {
  const { run_id } = c.req.valid("param");
  const { after, limit } = c.req.valid("query");
  const tenant = c.get("tenant");
  const events =
    (await runStub(c.env, tenant, run_id).events(after, limit)) ??
    (await readArchivedEvents(database(c.env.DB), tenant, run_id, after, limit));
  if (!events) throw notFound(run_id);
  return c.json(events, 200);
});

runRoutes.openapi(cancelRun, async (c) => {
  const { run_id } = c.req.valid("param");
  const tenant = c.get("tenant");
  const result = await runStub(c.env, tenant, run_id).cancel("Cancelled by request");
  if (result.outcome === "cancelled") return c.json(result.run, 200);
  // Finished: either its coordinator says so, or only the archive still holds it.
  const finished =
    result.outcome === "finished" ? result.run : await readArchivedRun(database(c.env.DB), tenant, run_id);
  if (!finished) throw notFound(run_id);
  throw new ApiError(409, `Run '${run_id}' already finished with status ${finished.status}`);
});

runRoutes.openapi(liveRun, async (c) => {
  const { run_id } = c.req.valid("param");
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "This endpoint needs a WebSocket upgrade (Upgrade: websocket)", {
      headers: { Upgrade: "websocket" },
    });
  }
  const tenant = c.get("tenant");
  const res = await runStub(c.env, tenant, run_id).fetch(c.req.raw);
  if (res.status === 404) {
    const archived = await readArchivedRun(database(c.env.DB), tenant, run_id);
    if (!archived) throw notFound(run_id);
    const events = (await readArchivedEvents(database(c.env.DB), tenant, run_id, 0, Number.MAX_SAFE_INTEGER)) ?? [];
    // biome-ignore lint/suspicious/noExplicitAny: a 101 response with a WebSocket is outside the typed responses
    return archivedLiveResponse(c.req.raw, archived, events, c.req.valid("query").after) as any;
  }
  // A refusal from the coordinator (429, 426) is copied so that middleware can add its headers;
  // a Durable Object's response headers are immutable.
  const answer = res.status === 101 ? res : new Response(res.body, res);
  // biome-ignore lint/suspicious/noExplicitAny: a 101 response with a WebSocket is outside the typed responses
  return answer as any;
});
