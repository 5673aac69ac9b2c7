import type { Problem } from "../contracts/common";

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  426: "Upgrade Required",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

const TYPE_BASE = "https://crane.dev/problems/";

/**
 * A typed error that the API's single error handler turns into RFC 9457 problem+json.
 *
 * @example throw new ApiError(404, "Run 'abc' not found")
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly extra: { errors?: Problem["errors"]; headers?: Record<string, string>; type?: string } = {},
  ) {
    super(detail);
    this.name = "ApiError";
  }
}

export function problemBody(status: number, detail: string, extra: ApiError["extra"] = {}, instance?: string): Problem {
  const title = TITLES[status] ?? "Error";
  const slug = extra.type ?? title.toLowerCase().replaceAll(" ", "-");
  return {
    type: `${TYPE_BASE}${slug}`,
    title,
    status,
    detail,
    ...(instance ? { instance } : {}),
    ...(extra.errors ? { errors: extra.errors } : {}),
  };
}

/** A problem+json response, usable outside Hono (the Durable Object answers with it too). */
export function problemResponse(
  status: number,
  detail: string,
  extra: ApiError["extra"] = {},
  instance?: string,
): Response {
  return new Response(JSON.stringify(problemBody(status, detail, extra, instance)), {
    status,
    headers: { "Content-Type": "application/problem+json", ...(extra.headers ?? {}) },
  });
}
