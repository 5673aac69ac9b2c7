import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { fromCursor, toCursor } from "../../contracts/cursor";
import { isCalendarDate, listLimitSchema } from "../../contracts/history";
import {
  approvalSchema,
  callbackAnswerSchema,
  callbackBodySchema,
  callbackTokenParamSchema,
  MAX_CALLBACK_TOKEN,
} from "../../contracts/waiting";
import { ApiError } from "../../http/problem";
import { runStubById } from "../../run/stub";
import { objectIdOfToken } from "../../run/waiting";
import { gateStub } from "../../tenancy/gate";
import { principalOf } from "../middleware/auth";
import { clientAddress } from "../middleware/auth-throttle";
import { json, problem } from "../responses";
import type { AppEnv } from "../types";
import { validationHook } from "../validation";
import { publicRoute, tenantRoute } from "./define";

/** `limit` and `cursor` as on GET /runs (docs/api.md): the same limit, default and message. */
const approvalsQuerySchema = z.object({
  limit: listLimitSchema,
  cursor: z.string().max(300, "cursor is not valid").optional(),
});

const listApprovals = tenantRoute({
  method: "get",
  path: "/approvals",
  summary: "The approval inbox: every approval step of the tenant's runs waiting now, oldest first",
  request: { query: approvalsQuerySchema },
  responses: {
    200: {
      ...json(z.array(approvalSchema), "A page of waiting approvals"),
      headers: { Link: { schema: { type: "string" }, description: 'rel="next" when more exist' } },
    },
  },
});

const callback = publicRoute({
  method: "post",
  path: "/callbacks/{token}",
  summary: "A waiting step's callback URL, for a third party without an API key (single use)",
  description:
    "For a signal step `{ data? }`; for an approval step `{ approve: true|false, comment?, reason?, data? }`. " +
    "An unknown, used or expired token is the same 404. Rate-limited per client address.",
  request: {
    params: callbackTokenParamSchema,
    body: { required: false, content: { "application/json": { schema: callbackBodySchema } } },
  },
  responses: {
    200: json(callbackAnswerSchema, "Accepted"),
    404: problem("Unknown, used or expired callback"),
    429: problem("Too many callbacks from this address (Retry-After)"),
  },
});

export const waitRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

/** The approval inbox's position (since, run_id, step_number), or null for anything this API did not make. */
function decode(cursor: string): { s: string; r: string; n: number } | null {
  const { s, r, n } = fromCursor(cursor) ?? {};
  return typeof s === "string" && isCalendarDate(s) && typeof r === "string" && Number.isInteger(n)
    ? { s, r, n: n as number }
    : null;
}

waitRoutes.openapi(listApprovals, async (c) => {
  const { limit, cursor } = c.req.valid("query");
  const after = cursor === undefined ? null : decode(cursor);
  if (cursor !== undefined && !after) throw new ApiError(400, "cursor is not valid: pass the value from a Link header");
  const rows = await gateStub(c.env, principalOf(c).tenant).approvals(limit + 1, after);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  if (rows.length > limit && last) {
    const url = new URL(c.req.url);
    url.searchParams.set("cursor", toCursor({ s: last.since, r: last.run_id, n: last.step_number }));
    c.header("Link", `<${url.pathname}${url.search}>; rel="next"`);
  }
  return c.json(page, 200);
});

const GONE = "Unknown or expired callback";

waitRoutes.openapi(callback, async (c) => {
  const limiter = c.env.CALLBACKS;
  if (limiter && !(await limiter.limit({ key: clientAddress(c.req) })).success) {
    throw new ApiError(429, "Too many callbacks from this address; retry in a minute", {
      headers: { "Retry-After": "60", "RateLimit-Policy": '"callbacks";q=60;w=60', RateLimit: '"callbacks";r=0;t=60' },
    });
  }
  const { token } = c.req.valid("param");
  const objectId = token.length > MAX_CALLBACK_TOKEN ? null : objectIdOfToken(token);
  const run = objectId ? runStubById(c.env, objectId) : null;
  if (!run) throw new ApiError(404, GONE);
  const body = (c.req.valid("json") as z.infer<typeof callbackBodySchema> | undefined) ?? {};
  const result = await run.callback(token, body);
  if (!result.ok) throw new ApiError(result.status === 422 ? 422 : 404, result.status === 422 ? result.detail : GONE);
  return c.json(result.value, 200);
});
