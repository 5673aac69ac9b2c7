import { createMiddleware } from "hono/factory";
import { randomHex } from "../../observability/ids";
import { log } from "../../observability/log";
import type { AppEnv } from "../types";

const MAX_REQUEST_ID = 128;
const isPrintable = (s: string) => [...s].every((ch) => ch >= "!" && ch <= "~");
const isHex = (s: string, len: number) => s.length === len && [...s].every((ch) => "0123456789abcdef".includes(ch));

/** The trace id of a W3C `traceparent` header (`00-<trace id>-<span id>-<flags>`), if valid. */
export function traceIdFrom(header: string | undefined): string | null {
  const parts = header?.trim().split("-");
  if (parts?.length !== 4) return null;
  const [version, trace, span, flags] = parts as [string, string, string, string];
  if (!isHex(version, 2) || version === "ff" || !isHex(span, 16) || !isHex(flags, 2)) return null;
  if (!isHex(trace, 32) || trace === "0".repeat(32)) return null;
  return trace;
}

/**
 * Gives every request an id (the client's `X-Request-Id` when it is sane) and a trace id (from
 * `traceparent`, or a new one), and echoes the request id on every response, errors included.
 */
export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  const started = Date.now();
  const given = c.req.header("X-Request-Id");
  const requestId = given && given.length <= MAX_REQUEST_ID && isPrintable(given) ? given : crypto.randomUUID();
  const traceId = traceIdFrom(c.req.header("traceparent")) ?? randomHex(16);
  const spanId = randomHex(8);
  c.set("requestId", requestId);
  c.set("traceId", traceId);
  await next();
  const traceparent = `00-${traceId}-${spanId}-01`;
  if (c.res.status === 101) {
    // An upgrade's headers cannot be changed in place: the same socket is answered anew.
    const headers = new Headers(c.res.headers);
    headers.set("X-Request-Id", requestId);
    headers.set("traceparent", traceparent);
    c.res = new Response(null, { status: 101, webSocket: c.res.webSocket, headers });
  } else {
    c.res.headers.set("X-Request-Id", requestId);
    c.res.headers.set("traceparent", traceparent);
  }
  // The path only: query strings and headers (where keys travel) are never logged.
  log("info", "request", {
    request_id: requestId,
    trace_id: traceId,
    span_id: spanId,
    tenant: c.get("tenant"),
    run_id: c.get("runId"),
    method: c.req.method,
    path: new URL(c.req.url).pathname,
    status: c.res.status,
    duration_ms: Date.now() - started,
  });
});
