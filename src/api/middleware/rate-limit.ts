import { createMiddleware } from "hono/factory";
import { ApiError } from "../../http/problem";
import { gateStub } from "../../tenancy/gate";
import type { AppEnv } from "../types";

/**
 * Requests per window per API key, counted by the tenant's gate. Every answer carries the IETF
 * RateLimit headers (draft-ietf-httpapi-ratelimit-headers): the policy, and what is left.
 */
export const rateLimit = createMiddleware<AppEnv>(async (c, next) => {
  const { tenant, keyId, quotas } = c.get("principal");
  const admission = await gateStub(c.env, tenant).admit(keyId, quotas.requests, quotas.windowS * 1000);
  const resetS = Math.max(1, Math.ceil(admission.resetMs / 1000));
  const headers = {
    "RateLimit-Policy": `"default";q=${quotas.requests};w=${quotas.windowS}`,
    RateLimit: `"default";r=${admission.remaining};t=${resetS}`,
  };
  if (!admission.allowed) {
    throw new ApiError(
      429,
      `Rate limit of ${quotas.requests} requests per ${quotas.windowS} s exceeded; retry in ${resetS} s`,
      { headers: { ...headers, "Retry-After": String(resetS) }, type: "rate-limited" },
    );
  }
  await next();
  if (c.res.status !== 101) for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
});
