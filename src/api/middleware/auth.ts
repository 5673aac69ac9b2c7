import { and, eq, isNull } from "drizzle-orm";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { type BodyHash, canonicalJson } from "../../contracts/body-hash";
import type { Env } from "../../env";
import { ApiError } from "../../http/problem";
import { database } from "../../store/db";
import { apiKeys } from "../../store/schema";
import { defaultQuotas, type Quotas } from "../../tenancy/quotas";
import type { AppEnv } from "../types";
import {
  authenticatedLately,
  checkAuthThrottle,
  clientAddress,
  recordAuthFailure,
  rememberAuthentication,
} from "./auth-throttle";

/** Local development defaults (docs/api.md): only honoured when ENVIRONMENT is `development`. */
export const DEV_API_KEY = "crane-dev-key";
export const DEV_TENANT = "dev";
export const DEV_ADMIN_TOKEN = "crane-dev-admin";

export const isDevelopment = (env: Env) => env.ENVIRONMENT === "development";

/** Who is calling: the key's tenant, its id, and its quotas. */
export interface Principal {
  tenant: string;
  keyId: string;
  quotas: Quotas;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The `Idempotency-Key` hashes of a request body (src/contracts/body-hash.ts). */
export async function bodyHashOf(body: unknown): Promise<BodyHash> {
  const [hash, legacy] = await Promise.all([sha256Hex(canonicalJson(body)), sha256Hex(JSON.stringify(body))]);
  return { hash, legacy };
}

/** The principal of an API key, or null for an unknown or revoked key (or the dev key outside development). */
export async function principalForKey(env: Env, key: string, hash?: string): Promise<Principal | null> {
  const defaults = defaultQuotas(env);
  if (key === DEV_API_KEY) return isDevelopment(env) ? { tenant: DEV_TENANT, keyId: "dev", quotas: defaults } : null;
  const row = await database(env.DB)
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, hash ?? (await sha256Hex(key))), isNull(apiKeys.revokedAt)))
    .get();
  if (!row) return null;
  return {
    tenant: row.tenant,
    keyId: row.keyId,
    quotas: {
      requests: row.rateLimitRequests ?? defaults.requests,
      windowS: row.rateLimitWindowS ?? defaults.windowS,
      maxActiveRuns: row.maxActiveRuns ?? defaults.maxActiveRuns,
    },
  };
}

/** `Authorization: Bearer <key>`, or for a WebSocket upgrade the subprotocol `bearer.<key>`. */
export function presentedKey(req: { header(name: string): string | undefined }): string | null {
  const auth = req.header("Authorization");
  if (auth?.toLowerCase().startsWith("bearer ")) return auth.slice(7).trim() || null;
  if (req.header("Upgrade")?.toLowerCase() === "websocket") {
    const protocols = (req.header("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim());
    const bearer = protocols.find((p) => p.startsWith("bearer."));
    if (bearer) return bearer.slice("bearer.".length) || null;
  }
  return null;
}

export const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="crane"' };
const MAX_KEY_LENGTH = 256;

/**
 * The principal of a presented secret, throttled: a client or key prefix that failed too often
 * is refused (429) before the lookup, and every failure counts. A key that authenticated here
 * lately is not refused for its address's failures (it is still looked up: a revoked key stops
 * at once), and the development key, which costs no lookup, never is. Null for an unknown secret.
 */
export async function authenticate(
  env: Env,
  req: { header(name: string): string | undefined },
  key: string,
): Promise<Principal | null> {
  if (key === DEV_API_KEY && isDevelopment(env)) return principalForKey(env, key);
  const ip = clientAddress(req);
  const hash = key.length > MAX_KEY_LENGTH ? null : await sha256Hex(key);
  if (hash === null || !authenticatedLately(hash)) checkAuthThrottle(ip, key);
  const principal = hash === null ? null : await principalForKey(env, key, hash);
  if (hash !== null) rememberAuthentication(hash, principal !== null);
  if (!principal) await recordAuthFailure(env, ip, key);
  return principal;
}

/** Resolves the caller's tenant from its API key; every record the request touches carries it. */
export const requireApiKey = createMiddleware<AppEnv>(async (c, next) => {
  const key = presentedKey(c.req);
  if (!key) {
    throw new ApiError(401, "Missing API key: send 'Authorization: Bearer <api key>'", { headers: CHALLENGE });
  }
  const principal = await authenticate(c.env, c.req, key);
  if (!principal) throw new ApiError(401, "Unknown API key", { headers: CHALLENGE });
  c.set("tenant", principal.tenant);
  c.set("principal", principal);
  await next();
});

/**
 * The authenticated caller. Routes get it from here, never from `c.get` directly, so a handler
 * that somehow runs without `requireApiKey` answers 401 instead of acting for nobody.
 */
export function principalOf(c: Context<AppEnv>): Principal {
  const principal = c.get("principal") as Principal | undefined;
  if (!principal)
    throw new ApiError(401, "Missing API key: send 'Authorization: Bearer <api key>'", { headers: CHALLENGE });
  return principal;
}
