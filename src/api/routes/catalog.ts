import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { breakerConfig, breakerStub, viewOf } from "../../breaker/breaker";
import { healthSchema, toolDescriptorSchema } from "../../contracts/tool";
import { checkHealth } from "../../observability/health";
import { defaultRegistry, describeTool } from "../../tools/registry";
import { principalOf } from "../middleware/auth";
import { json } from "../responses";
import type { AppEnv } from "../types";
import { validationHook } from "../validation";
import { publicRoute, tenantRoute } from "./define";

const listTools = tenantRoute({
  method: "get",
  path: "/tools",
  summary: "The tool catalog: names, descriptions, input JSON Schemas, effects, retry policies and your breakers",
  responses: { 200: json(z.array(toolDescriptorSchema), "Every tool") },
});

const health = publicRoute({
  method: "get",
  path: "/health",
  summary: "Dependency checks: D1, a Durable Object and the queue, each for real (no auth)",
  description:
    "Each check does a cheap real operation (a D1 query, a Durable Object call, a queue send). " +
    "Results are cached for a few seconds per Worker instance, so probing costs little. A failed check " +
    "names the dependency only; the cause is in the logs under the response's X-Request-Id.",
  responses: {
    200: json(healthSchema, "Healthy"),
    503: json(healthSchema, "A dependency is down"),
  },
});

export const catalogRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

catalogRoutes.openapi(listTools, async (c) => {
  const { tenant } = principalOf(c);
  const cfg = breakerConfig(c.env);
  // A tenant sees its own breakers: another tenant's failures never show here (nor refuse its steps).
  const tools = await Promise.all(
    [...defaultRegistry.values()].map(async (tool) =>
      describeTool(tool, viewOf(await breakerStub(c.env, tenant, tool.name).current(), cfg)),
    ),
  );
  return c.json(tools, 200);
});

catalogRoutes.openapi(health, async (c) => {
  const body = await checkHealth(c.env, c.get("requestId"));
  return body.status === "healthy" ? c.json(body, 200) : c.json(body, 503);
});
