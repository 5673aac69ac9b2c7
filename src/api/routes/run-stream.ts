import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { afterParamSchema, eventsQuerySchema, runEventSchema, runIdParamSchema } from "../../contracts/run";
import { ApiError } from "../../http/problem";
import { archivedLiveResponse, WATCHER_KEY_HEADER } from "../../run/live";
import { runStub } from "../../run/stub";
import { readArchivedEvents, readArchivedRun } from "../../store/archive-read";
import { database } from "../../store/db";
import { principalOf } from "../middleware/auth";
import { json, problem } from "../responses";
import type { AppEnv } from "../types";
import { validationHook } from "../validation";
import { tenantRoute } from "./define";
import { isRunId, runNotFound } from "./runs";

const getEvents = tenantRoute({
  method: "get",
  path: "/runs/{run_id}/events",
  summary: "The run's append-only event log, in order",
  request: { params: runIdParamSchema, query: eventsQuerySchema },
  responses: {
    200: {
      ...json(z.array(runEventSchema), "Events with seq > after, at most `limit`"),
      headers: { Link: { schema: { type: "string" }, description: 'rel="next" when the log goes on past this page' } },
    },
    404: problem("No such run"),
  },
});

const liveQuerySchema = z.object({ after: afterParamSchema.optional() });

const liveRun = tenantRoute({
  method: "get",
  path: "/runs/{run_id}/live",
  summary: "WebSocket: a snapshot, then every event of the run in order (docs/api.md, Live updates)",
  description:
    "Upgrade with `Upgrade: websocket`. Browsers may authenticate with the subprotocol `bearer.<key>` next to `crane.v1`. " +
    "The server sends `{type:'snapshot', run, seq}`, then the events after `after` (when given), then each new event as " +
    "`{type:'event', event}` (and, while a model writes, `{type:'delta', step_number, text}`, not stored); it closes " +
    "with 1000 after the run's terminal event.",
  request: { params: runIdParamSchema, query: liveQuerySchema },
  responses: {
    101: { description: "Switching Protocols: the live stream" },
    404: problem("No such run"),
    426: problem("Not a WebSocket upgrade"),
    429: problem("Too many live connections to this run"),
  },
});

export const streamRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

streamRoutes.openapi(getEvents, async (c) => {
  const { run_id } = c.req.valid("param");
  const { after, limit } = c.req.valid("query");
  const { tenant } = principalOf(c);
  if (!isRunId(run_id)) throw runNotFound(run_id);
  // One more than the page: whether the log goes on past it (then a Link to the next page).
  const events =
    (await runStub(c.env, tenant, run_id).events(after, limit + 1)) ??
    (await readArchivedEvents(database(c.env.DB), tenant, run_id, after, limit + 1));
  if (!events) throw runNotFound(run_id);
  if (events.length > limit) {
    events.length = limit;
    const next = new URL(c.req.url);
    next.searchParams.set("after", String(events[limit - 1]?.seq ?? after));
    c.header("Link", `<${next.pathname}${next.search}>; rel="next"`);
  }
  return c.json(events, 200);
});

streamRoutes.openapi(liveRun, async (c) => {
  const { run_id } = c.req.valid("param");
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "This endpoint needs a WebSocket upgrade (Upgrade: websocket)", {
      headers: { Upgrade: "websocket" },
    });
  }
  const { tenant, keyId } = principalOf(c);
  if (!isRunId(run_id)) throw runNotFound(run_id);
  // The socket is tagged with its key, so that revoking the key closes it (a client's header is replaced).
  const forwarded = new Request(c.req.raw);
  forwarded.headers.set(WATCHER_KEY_HEADER, keyId);
  const res = await runStub(c.env, tenant, run_id).fetch(forwarded);
  if (res.status === 404) {
    const archived = await readArchivedRun(database(c.env.DB), tenant, run_id);
    if (!archived) throw runNotFound(run_id);
    const events = (await readArchivedEvents(database(c.env.DB), tenant, run_id, 0, Number.MAX_SAFE_INTEGER)) ?? [];
    // biome-ignore lint/suspicious/noExplicitAny: a 101 response with a WebSocket is outside the typed responses
    return archivedLiveResponse(c.req.raw, archived, events, c.req.valid("query").after) as any;
  }
  // A refusal from the coordinator (429, 426) is copied so that middleware can add its headers;
  // a Durable Object's response headers are immutable.
  const answer = res.status === 101 ? res : new Response(res.body, res);
  // biome-ignore lint/suspicious/noExplicitAny: a 101 response with a WebSocket is outside the typed responses
  return answer as any;
});
