import { OpenAPIHono } from "@hono/zod-openapi";
import { metricsQuerySchema, metricsSchema } from "../../contracts/history";
import { ApiError } from "../../http/problem";
import { metrics } from "../../store/metrics";
import { gateStub } from "../../tenancy/gate";
import { principalOf } from "../middleware/auth";
import { json, problem } from "../responses";
import type { AppEnv } from "../types";
import { validationHook } from "../validation";
import { tenantRoute } from "./define";

/** Default window of `GET /metrics`: the last 24 hours. */
const DEFAULT_WINDOW_MS = 24 * 60 * 60 * 1000;

const getMetrics = tenantRoute({
  method: "get",
  path: "/metrics",
  summary: "Run and step counts, success rates and duration percentiles over a window (default: last 24 h)",
  description:
    "Counts runs by status, for the caller's tenant, over runs created in [since, until) — finished ones, and those " +
    "still running or waiting — and steps by status over the finished runs' steps. " +
    "`success_rate` is completed / (completed + failed). Durations are nearest-rank p50/p95/p99 in ms: per run " +
    "(created → completed, finished runs) and per tool (each step's started → completed).",
  request: { query: metricsQuerySchema },
  responses: { 200: json(metricsSchema, "Metrics"), 400: problem("Bad query parameter") },
});

export const metricsRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

metricsRoutes.openapi(getMetrics, async (c) => {
  const q = c.req.valid("query");
  const until = q.until ?? new Date().toISOString();
  const since = q.since ?? new Date(Date.parse(until) - DEFAULT_WINDOW_MS).toISOString();
  if (since >= until) throw new ApiError(400, "since must be earlier than until");
  const { tenant } = principalOf(c);
  const unfinished = await gateStub(c.env, tenant).unfinished(since, until);
  return c.json(await metrics(c.env.DB, tenant, since, until, unfinished), 200);
});
