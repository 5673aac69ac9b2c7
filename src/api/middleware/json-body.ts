import { createMiddleware } from "hono/factory";
import { nestsDeeperThan } from "../../contracts/json-depth";
import { LIMITS } from "../../contracts/limits";
import { ApiError } from "../../http/problem";
import type { AppEnv } from "../types";

/**
 * `application/json` with optional parameters (`; charset=utf-8`): the media type, then
 * `;name=value` pairs, a value a token or a quoted string. Deliberately no wider than the
 * media-type check @hono/zod-openapi runs after this one (no space before `;`, no empty
 * parameter), so that what passes here is parsed as JSON there. `+json` types
 * (`application/vnd.api+json`) are not accepted: docs/api.md speaks of JSON bodies only.
 */
const JSON_MEDIA_TYPE = /^application\/json((?:;[ \t]*[A-Za-z0-9-]+=(?:"[^";\\]*"|[^;" \t]+)[ \t]*)*)$/i;
const CHARSET = /;[ \t]*charset=(?:"([^"]*)"|([^;\s]+))/i;

/** Why a Content-Type is not JSON, as one sentence; null when it is. */
export function notJson(contentType: string | undefined): string | null {
  if (contentType === undefined || contentType.trim() === "") {
    return "Request body must be JSON: send 'Content-Type: application/json'";
  }
  const m = JSON_MEDIA_TYPE.exec(contentType.trim());
  if (!m) {
    const essence = contentType.split(";")[0]?.trim() ?? "";
    const shown = /^[!-~]{1,100}$/.test(essence) ? ` '${essence}'` : "";
    return `Content-Type${shown} is not JSON: send 'Content-Type: application/json' (parameters such as charset=utf-8 may follow)`;
  }
  const charset = CHARSET.exec(m[1] ?? "");
  const name = charset ? (charset[1] ?? charset[2] ?? "") : "utf-8";
  if (!/^utf-8$/i.test(name)) {
    const shown = /^[!-~]{1,40}$/.test(name) ? ` '${name}'` : "";
    return `Request body must be UTF-8 JSON: charset${shown} is not accepted`;
  }
  return null;
}

/**
 * For routes that take a JSON body: 415 unless the body is JSON, 422 when it nests deeper than
 * `LIMITS.maxJsonDepth`. An empty body passes when the route's body is optional: without a
 * Content-Type, or with a JSON one (as `{}`). Reads the body once; the validator parses the
 * cached text.
 */
export const jsonBody = (opts: { optional?: boolean } = {}) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const type = c.req.header("Content-Type");
    const text = await c.req.text();
    if (text.length === 0 && opts.optional && type === undefined) return next();
    const problem = notJson(type);
    if (problem) throw new ApiError(415, problem);
    if (text.length === 0 && opts.optional) {
      // Sent empty with a JSON Content-Type (as many clients do for "no body"): the same as `{}`.
      // (Hono caches the body it read as a promise; its type says the value.)
      (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve("{}");
      return next();
    }
    if (nestsDeeperThan(text, LIMITS.maxJsonDepth)) {
      throw new ApiError(422, `Request body nests arrays or objects deeper than ${LIMITS.maxJsonDepth} levels`, {
        errors: [{ path: "", message: `nesting deeper than ${LIMITS.maxJsonDepth} levels` }],
      });
    }
    await next();
  });
