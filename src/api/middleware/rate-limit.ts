import { createMiddleware } from "hono/factory";
import { ApiError } from "../../http/problem";
import { gateStub } from "../../tenancy/gate";
import type { AppEnv } from "../types";
import { principalOf } from "./auth";

/** A key's requests this isolate may still admit in the current window, leased from the gate. */
export interface Lease {
  start: number;
  left: number;
  /** What the gate had left after granting the lease. */
  remaining: number;
  /** The gate granted nothing: the window is spent for every isolate, refuse until it ends. */
  spent: boolean;
}
const leases = new Map<string, Lease>();
/** The gate call under way for a key: concurrent requests wait for it rather than each leasing. */
const asking = new Map<string, Promise<unknown>>();

/** How many requests of a window an isolate leases at once: a twentieth of the limit, at least one. */
export const leaseSize = (limit: number) => Math.max(1, Math.floor(limit / 20));

/**
 * Takes one request from the key's lease, leasing a new slice when it is used up. One gate call
 * at a time per key and isolate: a burst of concurrent first requests shares one lease instead of
 * leasing a slice each (which, with large slices, would spend the window unused and refuse).
 * The request that asks hands the ask to `keepAlive` (its `waitUntil`): the others wait on a
 * promise of its request, and should its client go away the platform cancels what that request
 * still has under way (https://developers.cloudflare.com/workers/runtime-apis/context/#waituntil)
 * — without it, they would wait for a lease that never comes.
 * Returns the lease, and whether the request was admitted.
 */
export async function take(
  id: string,
  start: number,
  ask: () => Promise<{ granted: number; remaining: number }>,
  keepAlive: (pending: Promise<unknown>) => void,
): Promise<{ lease: Lease; admitted: boolean }> {
  for (;;) {
    const lease = leases.get(id);
    if (lease?.start === start) {
      if (lease.left > 0) {
        lease.left--;
        return { lease, admitted: true };
      }
      if (lease.spent) return { lease, admitted: false };
    }
    let pending = asking.get(id);
    if (!pending) {
      pending = ask()
        .then((a) => {
          leases.set(id, { start, left: a.granted, remaining: a.remaining, spent: a.granted === 0 });
        })
        .finally(() => asking.delete(id));
      asking.set(id, pending);
      keepAlive(pending.catch(() => {}));
    }
    // Then look again: the new slice may already be spent by the requests that waited with this one.
    await pending;
  }
}

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
  const { lease, admitted } = await take(
    id,
    start,
    () => gateStub(c.env, tenant).admit(keyId, quotas.requests, windowMs, leaseSize(quotas.requests)),
    (pending) => c.executionCtx.waitUntil(pending),
  );
  const resetS = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
  const headers = {
    "RateLimit-Policy": `"default";q=${quotas.requests};w=${quotas.windowS}`,
    RateLimit: `"default";r=${Math.max(0, lease.remaining + lease.left)};t=${resetS}`,
  };
  if (!admitted) {
    throw new ApiError(
      429,
      `Rate limit of ${quotas.requests} requests per ${quotas.windowS} s exceeded; retry in ${resetS} s`,
      { headers: { ...headers, "Retry-After": String(resetS) }, type: "rate-limited" },
    );
  }
  await next();
  if (c.res.status !== 101) for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
});
