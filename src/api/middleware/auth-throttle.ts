import type { Env } from "../../env";
import { ApiError } from "../../http/problem";

/** The limiter's window (wrangler.toml `[[ratelimits]]` AUTH_FAILURES: `period`). */
const WINDOW_S = 60;
/** How much of a presented key names its "prefix" for throttling (keys are `crane_sk_` + 48 hex). */
const PREFIX_CHARS = 16;

/**
 * Addresses and key prefixes this isolate has seen go over the limit, until when: requests from
 * them are refused before any D1 lookup. Each isolate learns it from the limiter on its own first
 * failure, so a blocked client costs each isolate at most one lookup per window.
 */
const blocked = new Map<string, number>();

const subjects = (ip: string, key: string) => [`ip:${ip}`, `key:${key.slice(0, PREFIX_CHARS)}`];

export function clientAddress(req: { header(name: string): string | undefined }): string {
  return req.header("CF-Connecting-IP") ?? "unknown";
}

/** The limiter's limit (wrangler.toml `[[ratelimits]]` AUTH_FAILURES: `limit`), for the RateLimit headers. */
export const AUTH_FAILURE_LIMIT = 100;

function refuse(untilMs: number, now: number): never {
  const retry = Math.max(1, Math.ceil((untilMs - now) / 1000));
  throw new ApiError(429, `Too many failed authentications; retry in ${retry} s`, {
    headers: {
      "Retry-After": String(retry),
      "RateLimit-Policy": `"auth-failures";q=${AUTH_FAILURE_LIMIT};w=${WINDOW_S}`,
      RateLimit: `"auth-failures";r=0;t=${retry}`,
    },
    type: "auth-throttled",
  });
}

/** How long a key that authenticated stays exempt from its address's failures in this isolate. */
const TRUSTED_MS = 10 * 60 * 1000;
/** Most keys remembered per isolate (the oldest go first). */
const MAX_TRUSTED = 1000;
/** SHA-256 of keys that authenticated in this isolate lately, and when. */
const trusted = new Map<string, number>();

/** Whether the key with this hash authenticated here within `TRUSTED_MS`. */
export function authenticatedLately(hash: string, now = Date.now()): boolean {
  const at = trusted.get(hash);
  return at !== undefined && now - at < TRUSTED_MS;
}

/**
 * Remembers that a key authenticated (or forgets it, when it did not: a revoked key). The
 * address's throttle guards the lookup against guessing; a key that proved itself is no guess,
 * so another client's failures from the same address (one NAT, one CI machine) do not lock it out.
 */
export function rememberAuthentication(hash: string, ok: boolean, now = Date.now()): void {
  trusted.delete(hash);
  if (!ok) return;
  trusted.set(hash, now);
  if (trusted.size > MAX_TRUSTED) trusted.delete(trusted.keys().next().value as string);
}

/** Refuses (429) a client or key prefix that failed authentication too often, before any lookup. */
export function checkAuthThrottle(ip: string, key: string, now = Date.now()): void {
  for (const s of subjects(ip, key)) {
    const until = blocked.get(s);
    if (until === undefined) continue;
    if (until > now) refuse(until, now);
    blocked.delete(s);
  }
}

/**
 * Counts a failed authentication against the client's address and the key's prefix (the
 * platform's Rate Limiting binding: no Durable Object round trip). Past the limit the failure is
 * answered 429 instead of 401, and this isolate refuses the subject for the window.
 */
export async function recordAuthFailure(env: Env, ip: string, key: string, now = Date.now()): Promise<void> {
  const limiter = env.AUTH_FAILURES;
  if (!limiter) return;
  const outcomes = await Promise.all(subjects(ip, key).map((s) => limiter.limit({ key: s })));
  const over = subjects(ip, key).filter((_, i) => !outcomes[i]?.success);
  if (over.length === 0) return;
  const until = now + WINDOW_S * 1000;
  for (const s of over) blocked.set(s, until);
  refuse(until, now);
}
