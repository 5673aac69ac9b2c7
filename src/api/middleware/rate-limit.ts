import { createMiddleware } from "hono/factory";
import { ApiError } from "../../http/problem";
import { gateStub } from "../../tenancy/gate";
import type { AppEnv } from "../types";
import { principalOf } from "./auth";

/** A key's requests this isolate may still admit in the current window, leased from the gate. */
interface Lease {
  start: number;
  left: number;
  /** What the gate had left after granting the lease. */
  remaining: number;
}
const leases = new Map<string, Lease>();

/** How many requests of a window an isolate leases at once: a twentieth of the limit, at least one. */
export const leaseSize = (limit: number) => Math.max(1, Math.floor(limit / 20));

/**
 * Requests per window per API key, counted by the tenant's gate. An isolate leases a slice of the
 * window from the gate (`leaseSize`) and spends it locally, so a busy key costs one gate call per
 * slice, not per request; a slice of one (limits under 40) is exact. Leased requests an isolate
 * does not use are lost at the window's end: the count errs towards refusing, never towards
 * letting more through. Every answer carries the IETF RateLimit headers
 * (draft-ietf-httpapi-ratelimit-headers): the policy, and what is left.
 */
export const rateLimit = createMiddleware<AppEnv>(async (c, next) => {
  const { tenant, keyId, quotas } = principalOf(c);
  const windowMs = quotas.windowS * 1000;
  const now = Date.now();
  const start = now - (now % windowMs);
  const id = `${keyId}:${quotas.requests}:${quotas.windowS}`;
  let lease = leases.get(id);
  if (!lease || lease.start !== start || lease.left <= 0) {
    const admission = await gateStub(c.env, tenant).admit(keyId, quotas.requests, windowMs, leaseSize(quotas.requests));
    lease = { start, left: admission.granted, remaining: admission.remaining };
    leases.set(id, lease);
  }
  const resetS = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
  const headers = {
    "RateLimit-Policy": `"default";q=${quotas.requests};w=${quotas.windowS}`,
    RateLimit: `"default";r=${Math.max(0, lease.remaining + lease.left - 1)};t=${resetS}`,
  };
  if (lease.left <= 0) {
    throw new ApiError(
      429,
      `Rate limit of ${quotas.requests} requests per ${quotas.windowS} s exceeded; retry in ${resetS} s`,
      { headers: { ...headers, "Retry-After": String(resetS) }, type: "rate-limited" },
    );
  }
  lease.left--;
  await next();
  if (c.res.status !== 101) for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
});
