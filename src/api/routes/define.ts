import { createRoute, type RouteConfig } from "@hono/zod-openapi";
import { requireAdmin } from "../middleware/admin";
import { requireApiKey } from "../middleware/auth";
import { jsonBody } from "../middleware/json-body";
import { rateLimit } from "../middleware/rate-limit";
import { problem } from "../responses";

type Config = Omit<RouteConfig, "middleware" | "security">;
type Responses = Config["responses"];

/**
 * Response headers, described once under `components/headers` (app.ts registers them) and
 * referenced from every response that carries them.
 */
export const RESPONSE_HEADERS = {
  RequestId: {
    description: "The request's id: the client's X-Request-Id when it sent a sane one, else a new one.",
    schema: { type: "string" as const, maxLength: 128 },
  },
  Traceparent: {
    description:
      "W3C Trace Context of this request; its trace id is the one of the request's traceparent when it sent a valid one.",
    schema: { type: "string" as const, pattern: "^00-[0-9a-f]{32}-[0-9a-f]{16}-01$" },
  },
  RateLimitPolicy: {
    description:
      'The quota that applies, as `"<policy>";q=<requests>;w=<window in seconds>` (IETF RateLimit headers draft).',
    schema: { type: "string" as const, example: '"default";q=600;w=60' },
  },
  RateLimit: {
    description: 'What is left of it, as `"<policy>";r=<remaining>;t=<seconds until the window ends>`.',
    schema: { type: "string" as const, example: '"default";r=599;t=42' },
  },
  RetryAfter: {
    description: "Seconds to wait before retrying.",
    schema: { type: "integer" as const, minimum: 1 },
  },
  Allow: {
    description: "The methods the path has (RFC 9110): on a 405, what to use instead.",
    schema: { type: "string" as const, example: "GET, HEAD, POST" },
  },
  IdempotentReplayed: {
    description:
      "`true` when this answer replays an earlier request's with the same Idempotency-Key; absent otherwise.",
    schema: { type: "string" as const, enum: ["true"] },
  },
};
export const headerRef = (name: keyof typeof RESPONSE_HEADERS) => ({ $ref: `#/components/headers/${name}` });

/** The `Idempotency-Key` request header, described once under `components/parameters` (app.ts). */
export const IDEMPOTENCY_KEY_PARAMETER: { $ref: string } = { $ref: "#/components/parameters/IdempotencyKey" };

/** Which of the route's kind's headers a response of `status` carries. */
function headersFor(kind: "tenant" | "admin" | "public", status: number, idempotent: boolean) {
  const limited =
    status === 429 ||
    // A tenant's rate limit runs once its key is known, before the body is read (a 413 can come
    // first), and leaves a WebSocket's 101 as it is.
    (kind === "tenant" && status >= 200 && status !== 401 && status !== 413);
  return {
    "X-Request-Id": headerRef("RequestId"),
    traceparent: headerRef("Traceparent"),
    ...(limited ? { "RateLimit-Policy": headerRef("RateLimitPolicy"), RateLimit: headerRef("RateLimit") } : {}),
    ...(status === 429 ? { "Retry-After": headerRef("RetryAfter") } : {}),
    ...(idempotent && status >= 200 && status < 300 ? { "Idempotent-Replayed": headerRef("IdempotentReplayed") } : {}),
  };
}

/** Adds the headers every response of the route carries to the documented ones. */
function withHeaders(responses: Responses, kind: "tenant" | "admin" | "public", idempotent: boolean): Responses {
  return Object.fromEntries(
    Object.entries(responses).map(([status, response]) => {
      const r = response as { headers?: Record<string, unknown> };
      return [status, { ...r, headers: { ...headersFor(kind, Number(status), idempotent), ...r.headers } }];
    }),
  ) as Responses;
}

const bodyGuard = (r: Config) => (r.request?.body ? [jsonBody({ optional: r.request.body.required !== true })] : []);

/** 400: a body that is not JSON, a bad query or path parameter — whichever the route can get. */
function badRequest(r: Config): Record<number, ReturnType<typeof problem>> {
  const causes = [
    ...(r.request?.body ? ["a body that is not valid JSON"] : []),
    ...(r.request?.query || r.request?.params ? ["a bad query or path parameter"] : []),
  ];
  if (causes.length === 0) return {};
  const text = causes.join(", or ");
  return { 400: problem(text.charAt(0).toUpperCase() + text.slice(1)) };
}

/** The answers every route of a kind can give, documented once. */
const common = (r: Config, auth: Record<number, ReturnType<typeof problem>>) => ({
  ...auth,
  ...(r.request?.body
    ? {
        413: problem("Body over the size limit"),
        415: problem("Body is not JSON"),
        422: problem("The body is invalid (see `errors`)"),
      }
    : {}),
  ...badRequest(r),
  ...r.responses,
});
const TENANT = {
  401: problem("Missing or unknown API key"),
  429: problem("Rate limited, or too many failed authentications (Retry-After)"),
};
const ADMIN = {
  401: problem("Missing or unknown admin token"),
  403: problem("An API key was used on an admin route"),
  429: problem("Too many failed authentications (Retry-After)"),
};

/**
 * A route of a tenant: its API key (401), its rate limit (429) and, for a JSON body, the body
 * guard run before validation and the handler. Attached to the route itself, so whatever spelling
 * of the path reaches the handler (percent-encoding, …) went through them; and the OpenAPI
 * document's `security` comes from the same place.
 */
export const tenantRoute = <R extends Config>(r: R, opts: { idempotent?: boolean } = {}) =>
  createRoute({
    ...r,
    // The handler reads and checks the header itself (idempotencyKeyOf): documented, not validated here.
    ...(opts.idempotent ? { parameters: [IDEMPOTENCY_KEY_PARAMETER] } : {}),
    responses: withHeaders(common(r, TENANT), "tenant", opts.idempotent === true),
    security: [{ bearer: [] }],
    middleware: [requireApiKey, rateLimit, ...bodyGuard(r)] as const,
  });

/** A route of the admin API: the admin token (401), an API key is a 403. */
export const adminRoute = <R extends Config>(r: R) =>
  createRoute({
    ...r,
    responses: withHeaders(common(r, ADMIN), "admin", false),
    security: [{ admin: [] }],
    middleware: [requireAdmin, ...bodyGuard(r)] as const,
  });

/** A route without an API key (health, callbacks): only the body guard. */
export const publicRoute = <R extends Config>(r: R) =>
  createRoute({ ...r, responses: withHeaders(common(r, {}), "public", false), middleware: [...bodyGuard(r)] as const });
