import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import { type Health, healthSchema, toolDescriptorSchema } from "../../contracts/tool";
import { breakerConfig, breakerStub, viewOf } from "../../executor/breaker";
import { defaultRegistry, describeTool } from "../../tools/registry";
import type { AppEnv } from "../types";
import { validationHook } from "../validation";

const listTools = createRoute({
  method: "get",
  path: "/tools",
  summary: "The tool catalog: names, descriptions, input JSON Schemas, effects and retry policies",
  security: [{ bearer: [] }],
  responses: {
    200: { description: "Every tool", content: { "application/json": { schema: z.array(toolDescriptorSchema) } } },
  },
});

const health = createRoute({
  method: "get",
  path: "/health",
  summary: "Liveness and dependency checks (no auth)",
  responses: {
    200: { description: "Healthy", content: { "application/json": { schema: healthSchema } } },
    503: { description: "A dependency is down", content: { "application/json": { schema: healthSchema } } },
  },
});

export const catalogRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

catalogRoutes.openapi(listTools, async (c) => {
  const cfg = breakerConfig(c.env);
  const tools = await Promise.all(
    [...defaultRegistry.values()].map(async (tool) =>
      describeTool(tool, viewOf(await breakerStub(c.env, tool.name).current(), cfg)),
    ),
  );
  return c.json(tools, 200);
});

catalogRoutes.openapi(health, async (c) => {
  const checks: Health["checks"] = {};
  try {
    await drizzle(c.env.DB).run(sql`SELECT 1`);
    checks.d1 = { status: "ok" };
  } catch (err) {
    checks.d1 = { status: "error", detail: err instanceof Error ? err.message : String(err) };
  }
  checks.queue = c.env.STEPS ? { status: "ok" } : { status: "error", detail: "STEPS binding missing" };
  checks.durable_objects = c.env.RUNS ? { status: "ok" } : { status: "error", detail: "RUNS binding missing" };
  const healthy = Object.values(checks).every((ch) => ch.status === "ok");
  const body: Health = { status: healthy ? "healthy" : "unhealthy", checks };
  return healthy ? c.json(body, 200) : c.json(body, 503);
});
