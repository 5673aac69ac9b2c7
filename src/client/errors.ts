import type { Problem } from "./types";

/**
 * An error answer of the Crane API, carrying its RFC 9457 problem details as sent.
 *
 * @example
 * try { await crane.getRun(id) } catch (err) {
 *   if (err instanceof CraneError && err.status === 404) console.log(err.problem.detail);
 * }
 */
export class CraneError extends Error {
  /** The HTTP status; 0 when the server could not be reached (see `CraneConnectionError`). */
  readonly status: number;
  readonly problem: Problem;
  /** `X-Request-Id` of the answer: quote it when reporting a problem. */
  readonly requestId: string | null;
  /** `Retry-After` in seconds, on a 429 or 503. */
  readonly retryAfter: number | null;

  constructor(problem: Problem, opts: { requestId?: string | null; retryAfter?: number | null; cause?: unknown } = {}) {
    super(problem.detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "CraneError";
    this.status = problem.status;
    this.problem = problem;
    this.requestId = opts.requestId ?? null;
    this.retryAfter = opts.retryAfter ?? null;
  }
}

/** The server could not be reached (connection refused, DNS, TLS, timeout): `status` is 0. */
export class CraneConnectionError extends CraneError {
  constructor(detail: string, cause?: unknown) {
    super({ type: "about:blank", title: "Server unreachable", status: 0, detail }, { cause });
    this.name = "CraneConnectionError";
  }
}

function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.status === "number" && typeof v.detail === "string" && typeof v.title === "string";
}

/** `JSON.parse`, or undefined for text that is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** Turns an error response into a `CraneError`, whether or not its body is problem+json. */
export async function errorFromResponse(res: Response, what: string): Promise<CraneError> {
  const text = await res.text();
  // Not JSON, or not a problem: a proxy's or another server's page, described from the status.
  const body = parseJson(text);
  let problem: Problem;
  if (isProblem(body)) {
    problem = body;
  } else {
    const snippet = text.replace(/\s+/g, " ").trim().slice(0, 200);
    problem = {
      type: "about:blank",
      title: res.statusText || `HTTP ${res.status}`,
      status: res.status,
      detail: `${what} answered ${res.status}${snippet ? `: ${snippet}` : ""}`,
    };
  }
  const retryAfter = Number(res.headers.get("Retry-After"));
  return new CraneError(problem, {
    requestId: res.headers.get("X-Request-Id"),
    retryAfter: Number.isFinite(retryAfter) && res.headers.has("Retry-After") ? retryAfter : null,
  });
}
