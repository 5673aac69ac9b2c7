import { CraneConnectionError, CraneError, errorFromResponse, parseJson } from "./errors";

/** Which credential a request carries: the API key, the admin token, or none (health, callbacks). */
export type Auth = "key" | "admin" | "none";

export type QueryValue = string | number | boolean | Date | null | undefined;

export interface RequestOptions {
  auth: Auth;
  query?: Record<string, QueryValue>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Statuses whose body is returned rather than thrown (health answers 503 with a body). */
  accept?: number[];
}

export interface Answer<T> {
  data: T;
  response: Response;
}

export interface TransportOptions {
  baseUrl: string;
  apiKey: string;
  adminToken: string;
  fetch: typeof fetch;
  timeoutMs: number;
}

/** Appends a query string; `undefined` and `null` values are left out, dates sent as ISO-8601. */
export function withQuery(url: URL, query: Record<string, QueryValue> = {}): URL {
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    url.searchParams.set(name, value instanceof Date ? value.toISOString() : String(value));
  }
  return url;
}

/** The `cursor` of a `Link: <…?cursor=…>; rel="next"` header, or null when there is no next page. */
export function nextCursor(link: string | null, base: string): string | null {
  if (!link) return null;
  for (const part of link.split(",")) {
    const match = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (!match?.[1] || !/\brel="?next"?/.test(match[2] ?? "")) continue;
    return new URL(match[1], base).searchParams.get("cursor");
  }
  return null;
}

/** fetch with the credentials, the timeout, and every failure turned into a `CraneError`. */
export class Transport {
  readonly baseUrl: string;
  private readonly opts: TransportOptions;

  constructor(opts: TransportOptions) {
    this.opts = opts;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
  }

  url(path: string): URL {
    return new URL(`${this.baseUrl}${path}`);
  }

  secret(auth: Auth): string | null {
    return auth === "key" ? this.opts.apiKey : auth === "admin" ? this.opts.adminToken : null;
  }

  async request<T>(method: string, target: string | URL, opts: RequestOptions): Promise<Answer<T>> {
    const url = withQuery(typeof target === "string" ? this.url(target) : target, opts.query);
    const headers: Record<string, string> = { Accept: "application/json", ...opts.headers };
    const secret = this.secret(opts.auth);
    if (secret !== null) headers.Authorization = `Bearer ${secret}`;
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const what = `${method} ${url.pathname}`;
    let res: Response;
    try {
      res = await this.opts.fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (err) {
      throw unreachable(this.baseUrl, err, this.opts.timeoutMs);
    }
    if (!res.ok && !opts.accept?.includes(res.status)) throw await errorFromResponse(res, what);
    if (res.status === 204) return { data: undefined as T, response: res };
    const text = await res.text();
    const data = parseJson(text);
    if (data === undefined) {
      throw new CraneError({
        type: "about:blank",
        title: "Not a Crane answer",
        status: res.status,
        detail: `${what} answered ${res.status} with a body that is not JSON (is ${this.baseUrl} a Crane server?)`,
      });
    }
    return { data: data as T, response: res };
  }
}

export function unreachable(baseUrl: string, err: unknown, timeoutMs: number): CraneConnectionError {
  if (err instanceof Error && err.name === "TimeoutError") {
    return new CraneConnectionError(`${baseUrl} did not answer within ${timeoutMs} ms`, err);
  }
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new CraneConnectionError(`Cannot reach ${baseUrl}: ${reason}`, err);
}
