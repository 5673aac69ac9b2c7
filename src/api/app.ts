import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { idempotencyKeySchema } from "../contracts/common";
import { LIMITS } from "../contracts/limits";
import { ApiError, problemResponse } from "../http/problem";
import { log } from "../observability/log";
import { notJson } from "./middleware/json-body";
import { requestContext } from "./middleware/request-context";
import { adminRoutes } from "./routes/admin";
import { catalogRoutes } from "./routes/catalog";
import { headerRef, RESPONSE_HEADERS } from "./routes/define";
import { metricsRoutes } from "./routes/metrics";
import { controlRoutes } from "./routes/run-control";
import { streamRoutes } from "./routes/run-stream";
import { runRoutes } from "./routes/runs";
import { waitRoutes } from "./routes/waits";
import type { AppEnv } from "./types";
import { validationHook } from "./validation";

export const API_BASE = "/api/v1";

/**
 * Does `path` match a route pattern such as `/api/v1/runs/:run_id`? As Hono's router: a
 * parameter matches one segment that is not empty (`/runs/` is not `/runs/:run_id`).
 */
function matches(pattern: string, path: string): boolean {
  const a = pattern.split("/");
  const b = path.split("/");
  return (
    a.length === b.length && a.every((seg, i) => seg === "*" || (seg.startsWith(":") ? b[i] !== "" : seg === b[i]))
  );
}

/** Whether a path is the API's, however spelt: any case, repeated slashes (`/API/v1`, `//api/v1`). */
export function isApiPath(path: string): boolean {
  const p = path.replace(/\/{2,}/g, "/").toLowerCase();
  return p === "/api" || p.startsWith("/api/") || p.startsWith("/openapi.json");
}

/**
 * A console page, /docs or one of their files, as the static assets answer it (their _headers
 * included), with headers the middleware may still add to (X-Request-Id): an asset's are immutable.
 */
async function servePage(assets: Fetcher, request: Request): Promise<Response> {
  const res = await assets.fetch(request);
  return new Response(res.body, res);
}

/** Builds the Hono app: middleware, routes, the OpenAPI document and one error handler. */
export function createApp() {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.use("*", requestContext);
  app.use(
    `${API_BASE}/*`,
    bodyLimit({
      maxSize: LIMITS.maxBodyBytes,
      onError: () => {
        throw new ApiError(413, `Request body must be at most ${LIMITS.maxBodyBytes} bytes`);
      },
    }),
  );
  // Auth, rate limits and body checks are attached to each route (routes/define.ts), not matched
  // here on the raw path: whatever spelling of a path reaches a handler went through them.
  app.route(API_BASE, runRoutes);
  app.route(API_BASE, streamRoutes);
  app.route(API_BASE, controlRoutes);
  app.route(API_BASE, waitRoutes);
  app.route(API_BASE, catalogRoutes);
  app.route(API_BASE, metricsRoutes);
  app.route(API_BASE, adminRoutes);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "An API key. Locally (ENVIRONMENT=development) the key crane-dev-key works.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "admin", {
    type: "http",
    scheme: "bearer",
    description: "The admin token (secret ADMIN_TOKEN). Locally (ENVIRONMENT=development) crane-dev-admin works.",
  });
  for (const [name, header] of Object.entries(RESPONSE_HEADERS)) {
    app.openAPIRegistry.registerComponent("headers", name, header);
  }
  // The header's schema, from the zod schema the handlers check it with.
  const { type, pattern } = z.toJSONSchema(idempotencyKeySchema) as { type: "string"; pattern: string };
  app.openAPIRegistry.registerComponent("parameters", "IdempotencyKey", {
    name: "Idempotency-Key",
    in: "header",
    required: false,
    description:
      "The same key with the same body within 24 h answers with the first request's result (header " +
      "`Idempotent-Replayed: true`) and does nothing again; the same key with a different body → 422. A malformed key → 400.",
    schema: { type, pattern },
  });
  // A method a path does not have, on any path: no operation can name it, so it is a shared response.
  app.openAPIRegistry.registerComponent("responses", "MethodNotAllowed", {
    description: "405: the path exists but not with this method (any path of the API). `Allow` lists its methods.",
    headers: {
      Allow: headerRef("Allow"),
      "X-Request-Id": headerRef("RequestId"),
      traceparent: headerRef("Traceparent"),
    },
    content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
  });
  registerDocumentPages(app);
  app.doc31("/openapi.json", (c) => ({
    openapi: "3.1.0",
    info: {
      title: "Crane API",
      version: "1.1.0",
      description:
        "Crane runs prompts as plans of tool calls, durably and in parallel, on Cloudflare Workers. " +
        "The wire contract, with the behaviour behind each route, is docs/api.md in the repository. " +
        "Every error is an RFC 9457 problem (`application/problem+json`); every answer carries `X-Request-Id`. " +
        "A path the API does not have → 404; a method a path does not have → 405 with `Allow` " +
        "(`#/components/responses/MethodNotAllowed`); a body over the limit → 413.",
    },
    // The Crane that serves the document, so that /docs' examples name a full URL.
    servers: [{ url: new URL(c.req.url).origin, description: "This Crane" }],
  }));

  app.notFound((c) => {
    // Not the API's: the console or /docs, from the static assets (the SPA's index.html for a
    // route of the console). A spelling of an API path (`/API/…`, `//api/…`) stays the API's 404.
    if (!isApiPath(c.req.path)) return servePage(c.env.ASSETS, c.req.raw);
    // The path as the router saw it (percent-decoded by Hono's getPath), so that a method on
    // `/api/v1/%72uns` is a 405 exactly when it would be on `/api/v1/runs`, which it reaches.
    const path = c.req.path;
    const methods = new Set(app.routes.filter((r) => r.method !== "ALL" && matches(r.path, path)).map((r) => r.method));
    // Hono answers HEAD wherever it answers GET: Allow says so (RFC 9110 §10.2.1).
    if (methods.has("GET")) methods.add("HEAD");
    const allowed = [...methods].sort();
    if (allowed.length > 0) {
      return problemResponse(405, `Method ${c.req.method} is not allowed on ${path}`, {
        headers: { Allow: allowed.join(", ") },
      });
    }
    return problemResponse(404, `No route for ${c.req.method} ${path}`);
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return problemResponse(err.status, err.detail, err.extra, new URL(c.req.url).pathname);
    if (err instanceof HTTPException && err.status < 500) {
      // 415 here is @hono/zod-openapi's own media-type check, which jsonBody runs ahead of.
      const detail =
        err.status === 400
          ? "Request body is not valid JSON"
          : err.status === 415
            ? (notJson(c.req.header("Content-Type")) ?? err.message)
            : err.message;
      return problemResponse(err.status, detail);
    }
    log("error", "unhandled error", {
      request_id: c.get("requestId"),
      trace_id: c.get("traceId"),
      tenant: c.get("tenant"),
      error: err,
      stack: err instanceof Error ? err.stack : undefined,
    });
    return problemResponse(500, "Internal error; quote the X-Request-Id header when reporting it");
  });

  return app;
}

/** `GET /openapi.json` and `GET /docs` are part of the contract (docs/api.md): the document names them too. */
function registerDocumentPages(app: OpenAPIHono<AppEnv>): void {
  const headers = { "X-Request-Id": headerRef("RequestId"), traceparent: headerRef("Traceparent") };
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/openapi.json",
    summary: "This OpenAPI 3.1 document (no key)",
    responses: {
      200: { description: "The document", headers, content: { "application/json": { schema: { type: "object" } } } },
    },
  });
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/docs",
    summary: "A page that renders this document, with assets served by Crane itself (no key)",
    responses: {
      200: { description: "An HTML page", headers, content: { "text/html": { schema: { type: "string" } } } },
    },
  });
}
