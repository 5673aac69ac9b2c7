import { createMiddleware } from "hono/factory";
import { nestsDeeperThan } from "../../contracts/json-depth";
import { LIMITS } from "../../contracts/limits";
import { ApiError } from "../../http/problem";
import type { AppEnv } from "../types";

/**
 * For routes that take a JSON body: 415 unless the body is JSON, 422 when it nests deeper than
 * `LIMITS.maxJsonDepth`. An empty body passes when the route's body is optional (with a JSON
 * Content-Type, as `{}`). Reads the body
 * once; the validator parses the cached text.
 */
export const jsonBody = (opts: { optional?: boolean } = {}) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const type = (c.req.header("Content-Type") ?? "").toLowerCase();
    const text = await c.req.text();
    if (text.length === 0 && opts.optional) {
      // Sent empty with a JSON Content-Type (as many clients do for "no body"): the same as `{}`.
      // (Hono caches the body it read as a promise; its type says the value.)
      if (type.startsWith("application/json"))
        (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve("{}");
      return next();
    }
    if (!type.startsWith("application/json")) {
      throw new ApiError(415, "Request body must be JSON (Content-Type: application/json)");
    }
    if (nestsDeeperThan(text, LIMITS.maxJsonDepth)) {
      throw new ApiError(422, `Request body nests arrays or objects deeper than ${LIMITS.maxJsonDepth} levels`, {
        errors: [{ path: "", message: `nesting deeper than ${LIMITS.maxJsonDepth} levels` }],
      });
    }
    await next();
  });
