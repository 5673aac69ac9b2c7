import { createRoute, type RouteConfig } from "@hono/zod-openapi";
import { requireAdmin } from "../middleware/admin";
import { requireApiKey } from "../middleware/auth";
import { jsonBody } from "../middleware/json-body";
import { rateLimit } from "../middleware/rate-limit";
import { problem } from "../responses";

type Config = Omit<RouteConfig, "middleware" | "security">;

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
export const tenantRoute = <R extends Config>(r: R) =>
  createRoute({
    ...r,
    responses: common(r, TENANT),
    security: [{ bearer: [] }],
    middleware: [requireApiKey, rateLimit, ...bodyGuard(r)] as const,
  });

/** A route of the admin API: the admin token (401), an API key is a 403. */
export const adminRoute = <R extends Config>(r: R) =>
  createRoute({
    ...r,
    responses: common(r, ADMIN),
    security: [{ admin: [] }],
    middleware: [requireAdmin, ...bodyGuard(r)] as const,
  });

/** A route without an API key (health, callbacks): only the body guard. */
export const publicRoute = <R extends Config>(r: R) =>
  createRoute({ ...r, responses: common(r, {}), middleware: [...bodyGuard(r)] as const });
