import { OpenAPIHono } from "@hono/zod-openapi";
import { and, desc, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import {
  type ApiKeyView,
  apiKeySchema,
  createApiKeySchema,
  createdApiKeySchema,
  keyIdParamSchema,
  listApiKeysQuerySchema,
} from "../../contracts/admin";
import type { Env } from "../../env";
import { ApiError } from "../../http/problem";
import { counting, readCounters } from "../../observability/cost";
import { log } from "../../observability/log";
import { runStub } from "../../run/stub";
import { database } from "../../store/db";
import { apiKeys } from "../../store/schema";
import { gateStub } from "../../tenancy/gate";
import { sha256Hex } from "../middleware/auth";
import { problem } from "../responses";
import type { AppEnv } from "../types";
import { validationHook } from "../validation";
import { adminRoute } from "./define";

const createKey = adminRoute({
  method: "post",
  path: "/admin/api-keys",
  summary: "Create an API key for a tenant (the secret is shown once)",
  request: { body: { required: true, content: { "application/json": { schema: createApiKeySchema } } } },
  responses: {
    201: { description: "The new key", content: { "application/json": { schema: createdApiKeySchema } } },
    401: problem("Missing or unknown admin token"),
    403: problem("An API key was used"),
    422: problem("Invalid body"),
  },
});

const listKeys = adminRoute({
  method: "get",
  path: "/admin/api-keys",
  summary: "A tenant's API keys (metadata only, never the secret)",
  request: { query: listApiKeysQuerySchema },
  responses: {
    200: { description: "Keys, newest first", content: { "application/json": { schema: z.array(apiKeySchema) } } },
    400: problem("Bad tenant"),
    401: problem("Missing or unknown admin token"),
    403: problem("An API key was used"),
  },
});

const revokeKey = adminRoute({
  method: "delete",
  path: "/admin/api-keys/{key_id}",
  summary: "Revoke an API key: it stops working at once",
  request: { params: keyIdParamSchema },
  responses: {
    204: { description: "Revoked" },
    401: problem("Missing or unknown admin token"),
    403: problem("An API key was used"),
    404: problem("No such key"),
  },
});

const view = (row: typeof apiKeys.$inferSelect): ApiKeyView => ({
  key_id: row.keyId,
  tenant: row.tenant,
  name: row.name,
  created_at: row.createdAt,
  revoked_at: row.revokedAt,
  rate_limit:
    row.rateLimitRequests !== null && row.rateLimitWindowS !== null
      ? { requests: row.rateLimitRequests, window_s: row.rateLimitWindowS }
      : null,
  max_active_runs: row.maxActiveRuns,
});

export const adminRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

adminRoutes.openapi(createKey, async (c) => {
  const body = c.req.valid("json");
  const secret = `crane_sk_${Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("")}`;
  const row = {
    keyId: crypto.randomUUID(),
    tenant: body.tenant,
    name: body.name,
    keyHash: await sha256Hex(secret),
    createdAt: new Date().toISOString(),
    revokedAt: null,
    rateLimitRequests: body.rate_limit?.requests ?? null,
    rateLimitWindowS: body.rate_limit?.window_s ?? null,
    maxActiveRuns: body.max_active_runs ?? null,
  };
  await database(c.env.DB).insert(apiKeys).values(row);
  return c.json({ ...view(row), api_key: secret }, 201);
});

adminRoutes.openapi(listKeys, async (c) => {
  const { tenant } = c.req.valid("query");
  const rows = await database(c.env.DB)
    .select()
    .from(apiKeys)
    .where(eq(apiKeys.tenant, tenant))
    .orderBy(desc(apiKeys.createdAt))
    .all();
  return c.json(rows.map(view), 200);
});

adminRoutes.openapi(revokeKey, async (c) => {
  const { key_id } = c.req.valid("param");
  // Key ids are UUIDs: a longer value names no key, and is not looked up.
  if (key_id.length > 64) throw new ApiError(404, `API key '${key_id.slice(0, 64)}…' not found or already revoked`);
  const revoked = await database(c.env.DB)
    .update(apiKeys)
    .set({ revokedAt: new Date().toISOString() })
    .where(and(eq(apiKeys.keyId, key_id), isNull(apiKeys.revokedAt)))
    .returning({ keyId: apiKeys.keyId, tenant: apiKeys.tenant })
    .all();
  const row = revoked[0];
  if (!row) throw new ApiError(404, `API key '${key_id}' not found or already revoked`);
  await dropLiveStreams(c.env, row.tenant, row.keyId);
  return c.body(null, 204);
});

/** Run objects asked at once when a revoked key's live streams are closed. */
const DROP_CONCURRENCY = 25;

/**
 * Closes the live streams a revoked key holds open, before the revocation answers: a stream is
 * authenticated once, when it opens, and would otherwise go on for as long as its run waits.
 * Only unfinished runs can have one (a run's streams close when it ends); its tenant's gate lists
 * them. What cannot be reached is logged, not retried, and never fails the revocation: the key
 * is revoked either way, and a request with it is a 401.
 */
async function dropLiveStreams(env: Env, tenant: string, keyId: string): Promise<void> {
  let closed = 0;
  let missed = 0;
  let error: unknown = null;
  try {
    const runIds = await gateStub(env, tenant).unfinishedRunIds();
    for (let i = 0; i < runIds.length; i += DROP_CONCURRENCY) {
      const outcomes = await Promise.allSettled(
        runIds.slice(i, i + DROP_CONCURRENCY).map((id) => runStub(env, tenant, id).dropWatchers(keyId)),
      );
      for (const o of outcomes) {
        if (o.status === "fulfilled") closed += o.value;
        else {
          missed++;
          error = o.reason;
        }
      }
    }
  } catch (err) {
    error = err; // the gate did not answer
  }
  if (error !== null) {
    log("warn", "some live streams of a revoked key may still be open", { tenant, key_id: keyId, missed, error });
  }
  if (closed > 0) log("info", "closed the live streams of a revoked key", { tenant, key_id: keyId, streams: closed });
}

const countersQuerySchema = z.object({
  reset: z.enum(["0", "1"], { error: "reset must be 0 or 1" }).optional(),
});

const readCountersRoute = adminRoute({
  method: "get",
  path: "/admin/counters",
  summary: "Benchmark only (BENCH_COUNTERS=true): billable operations counted since the last reset",
  description:
    "Worker invocations, Durable Object requests and SQLite rows read/written, D1 queries and rows, queue " +
    "messages written/read/deleted/retried — counted in the isolate. `reset=1` starts them again. 404 unless the " +
    "deployment was started with BENCH_COUNTERS=true (the benchmark does this; production never should).",
  request: { query: countersQuerySchema },
  responses: {
    200: { description: "The counters", content: { "application/json": { schema: z.record(z.string(), z.number()) } } },
    404: problem("Counting is off"),
  },
});

adminRoutes.openapi(readCountersRoute, async (c) => {
  if (!counting(c.env)) throw new ApiError(404, "Counting is off (BENCH_COUNTERS is not true)");
  return c.json(readCounters(c.req.valid("query").reset === "1"), 200);
});
