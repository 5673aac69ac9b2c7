import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { z } from "zod";
import { listRunsQuerySchema, runSummarySchema } from "../../contracts/history";
import { rerunBodySchema } from "../../contracts/recovery";
import { createRunBodySchema, type Run, runIdParamSchema, runSchema } from "../../contracts/run";
import { ApiError } from "../../http/problem";
import { rerunPlanInput, reusableOutputs } from "../../plan/rerun";
import { runStub } from "../../run/stub";
import { readArchivedRun } from "../../store/archive-read";
import { database } from "../../store/db";
import { d1Offset, mergePage } from "../../store/runs-merge";
import { archivedAmong, decodeCursor, encodeCursor, listRuns } from "../../store/runs-query";
import { gateStub } from "../../tenancy/gate";
import { principalOf } from "../middleware/auth";
import { json, problem } from "../responses";
import { startRun, validateExplicitPlan } from "../run-creation";
import type { AppEnv } from "../types";
import { summarize, validationHook } from "../validation";
import { tenantRoute } from "./define";

const created = (description: string) => ({
  ...json(runSchema, description),
  headers: { Location: { schema: { type: "string" as const }, description: "/api/v1/runs/{run_id} of the run" } },
});

const createRun = tenantRoute(
  {
    method: "post",
    path: "/runs",
    summary: "Create a run: plan the prompt (or take an explicit plan) and start executing it",
    description:
      "Planning is finished when the 201 is sent. A pure plan (calculator, text) completes inside this request. " +
      "`Idempotency-Key` (≤ 255 chars): the same key and body within 24 h return the same run (`Idempotent-Replayed: true`).",
    request: { body: { required: true, content: { "application/json": { schema: createRunBodySchema } } } },
    responses: {
      201: created("The run, planned and started"),
      400: problem("Malformed JSON or Idempotency-Key"),
      429: problem("Rate limited, or the tenant's active-run quota is full (Retry-After)"),
    },
  },
  { idempotent: true },
);

const getRun = tenantRoute({
  method: "get",
  path: "/runs/{run_id}",
  summary: "Get a run with its plan, execution log, waits and compensation",
  request: { params: runIdParamSchema },
  responses: { 200: json(runSchema, "The run"), 404: problem("No such run") },
});

const listRunsRoute = tenantRoute({
  method: "get",
  path: "/runs",
  summary: "List runs, newest first (in-flight runs too, from the moment they are created), with filters and paging",
  request: { query: listRunsQuerySchema },
  responses: {
    200: {
      ...json(z.array(runSummarySchema), "A page of runs"),
      headers: { Link: { schema: { type: "string" }, description: 'rel="next" when more runs exist' } },
    },
  },
});

const rerunRoute = tenantRoute(
  {
    method: "post",
    path: "/runs/{run_id}/rerun",
    summary:
      "Rerun a finished run as a new run, from a step or with new inputs; steps it need not run again reuse their outputs",
    description:
      "The original must be finished (409 otherwise) and never changes. Steps that succeeded in it and are neither " +
      "`from_step`, nor overridden in `tool_inputs`, nor downstream of those, succeed at once with the original output " +
      "(`step.reused`). A step the original's compensation undid is not reused: it runs again, since its effect is " +
      "gone (rerunning a compensated run re-executes what was undone). `Idempotency-Key` works as on POST /runs.",
    request: {
      params: runIdParamSchema,
      body: { required: false, content: { "application/json": { schema: rerunBodySchema } } },
    },
    responses: {
      201: created("The new run"),
      404: problem("No such run"),
      409: problem("The run has not finished, or has no plan to rerun"),
    },
  },
  { idempotent: true },
);

export const runRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

/** Run ids are UUIDs: anything else is not found, without waking any object. */
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** 404 for a run id that names no run of the caller's; a long one is shortened in the sentence. */
export const runNotFound = (runId: string) =>
  new ApiError(404, `Run '${runId.length > 64 ? `${runId.slice(0, 64)}…` : runId}' not found`);

/** The caller's run from its coordinator, or from the D1 archive once its storage is gone; else 404. */
export async function findRun(c: Context<AppEnv>, runId: string): Promise<Run> {
  const { tenant } = principalOf(c);
  const run = RUN_ID.test(runId)
    ? ((await runStub(c.env, tenant, runId).get()) ?? (await readArchivedRun(database(c.env.DB), tenant, runId)))
    : null;
  if (!run) throw runNotFound(runId);
  return run;
}

export const isRunId = (id: string) => RUN_ID.test(id);

runRoutes.openapi(createRun, async (c) => {
  const body = c.req.valid("json");
  const plan = body.plan ? validateExplicitPlan(c, body.plan, body.prompt) : null;
  return startRun(c, {
    prompt: body.prompt,
    planner: body.planner,
    options: body.options,
    plan,
    rerunOf: null,
    reuse: null,
    body,
  }) as never;
});

runRoutes.openapi(listRunsRoute, async (c) => {
  const query = c.req.valid("query");
  const { tenant } = principalOf(c);
  const before = query.cursor === undefined ? null : decodeCursor(query.cursor);
  if (query.cursor !== undefined && !before)
    throw new ApiError(400, "cursor is not valid: pass the value from a Link header");
  const offset = query.offset ?? 0;
  const gate = await gateStub(c.env, tenant).list({
    status: query.status,
    tool: query.tool,
    since: query.since,
    until: query.until,
    q: query.q,
    rerun_of: query.rerun_of,
    before,
    limit: offset + query.limit + 1,
  });
  // Offsets count the union of both sources exactly: runs that finished and are in D1 already
  // (archived a moment ago) are taken from D1 only. Cursor pages de-duplicate as they merge.
  if (offset > 0 && gate.finished.length > 0) {
    const both = await archivedAmong(database(c.env.DB), tenant, gate.finished);
    gate.rows = gate.rows.filter((r) => !both.has(r.run_id));
    gate.total -= both.size;
  }
  const start = d1Offset(offset, gate.total);
  const d1 = await listRuns(
    database(c.env.DB),
    tenant,
    { ...query, offset: start },
    before,
    offset - start + query.limit + 1,
  );
  const page = mergePage(d1, gate.rows, { offset, limit: query.limit, gateTotal: gate.total });
  const last = page.runs.at(-1);
  if (page.more && last) {
    const url = new URL(c.req.url);
    url.searchParams.delete("offset");
    url.searchParams.set("cursor", encodeCursor({ createdAt: last.created_at, runId: last.run_id }));
    c.header("Link", `<${url.pathname}${url.search}>; rel="next"`);
  }
  return c.json(page.runs, 200);
});

runRoutes.openapi(getRun, async (c) => {
  return c.json(await findRun(c, c.req.valid("param").run_id), 200);
});

runRoutes.openapi(rerunRoute, async (c) => {
  const { run_id } = c.req.valid("param");
  const body = (c.req.valid("json") as z.infer<typeof rerunBodySchema> | undefined) ?? {};
  const original = await findRun(c, run_id);
  if (!["completed", "failed", "cancelled"].includes(original.status)) {
    throw new ApiError(
      409,
      `Run '${run_id}' has not finished (status ${original.status}); only a finished run can be rerun`,
    );
  }
  if (!original.plan) throw new ApiError(409, `Run '${run_id}' has no plan to rerun (it failed while planning)`);
  const { input, issues } = rerunPlanInput(original.plan, body);
  if (issues.length > 0) throw new ApiError(422, summarize("rerun", issues), { errors: issues, type: "invalid-rerun" });
  // A problem in an overridden step's input is named by the field the client sent.
  const overridden = new Set(Object.keys(body.tool_inputs ?? {}).map(Number));
  const rename = (path: string) => {
    const m = /^plan\.steps\[(\d+)\]\.tool_input(.*)$/.exec(path);
    const n = m ? input.steps[Number(m[1])]?.step_number : undefined;
    return m && n !== undefined && overridden.has(n) ? `tool_inputs.${n}${m[2]}` : path;
  };
  // The original's steps keep their times (passed ones wake at once); an override is checked as new.
  const untimed = new Set(input.steps.map((s) => s.step_number).filter((n) => !overridden.has(n)));
  const plan = validateExplicitPlan(c, input, original.plan.final_goal, { rename, untimed });
  const fromStep = body.from_step ?? null;
  // What the original's compensation undid is not reused: its effects are gone.
  const undone = (original.compensation?.steps ?? []).filter((s) => s.status === "succeeded").map((s) => s.step_number);
  const outputs = reusableOutputs(plan, original.execution_log, fromStep, [...overridden, ...undone]);
  const options = { ...original.options, ...body.options };
  return startRun(c, {
    prompt: original.prompt,
    planner: "auto",
    options: options as never,
    plan,
    rerunOf: { run_id, from_step: fromStep },
    reuse: Object.keys(outputs).length > 0 ? { fromRun: run_id, outputs } : null,
    body: { rerun_of: run_id, ...body },
  }) as never;
});
