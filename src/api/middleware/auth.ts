import { and, eq, isNull } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import type { Env } from "../../env";
import { database } from "../../store/db";
import { apiKeys } from "../../store/schema";
import { defaultQuotas, type Quotas } from "../../tenancy/quotas";
import { ApiError } from "../problem";
import type { AppEnv } from "../types";

/** Local development defaults (API.md): only honoured when ENVIRONMENT is `development`. */
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

/** The principal of an API key, or null for an unknown or revoked key (or the dev key outside development). */
export async function principalForKey(env: Env, key: string): Promise<Principal | null> {
  const defaults = defaultQuotas(env);
  if (key === DEV_API_KEY) return isDevelopment(env) ? { tenant: DEV_TENANT, keyId: "dev", quotas: defaults } : null;
  const row = await database(env.DB)
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, await sha256Hex(key)), isNull(apiKeys.revokedAt)))
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

/** Resolves the caller's tenant from its API key; every record the request touches carries it. */
export const requireApiKey = createMiddleware<AppEnv>(async (c, next) => {
  const key = presentedKey(c.req);
  if (!key) {
    throw new ApiError(401, "Missing API key: send 'Authorization: Bearer <api key>'", { headers: CHALLENGE });
  }
  const principal = key.length > MAX_KEY_LENGTH ? null : await principalForKey(c.env, key);
  if (!principal) throw new ApiError(401, "Unknown API key", { headers: CHALLENGE });
  c.set("tenant", principal.tenant);
  c.set("principal", principal);
  await next();
});
