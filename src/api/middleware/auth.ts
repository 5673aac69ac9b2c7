import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { createMiddleware } from "hono/factory";
import type { Env } from "../../env";
import { apiKeys } from "../../store/schema";
import { ApiError } from "../problem";
import type { AppEnv } from "../types";

/** Local development defaults (API.md): only honoured when ENVIRONMENT is `development`. */
export const DEV_API_KEY = "crane-dev-key";
export const DEV_TENANT = "dev";
export const DEV_ADMIN_TOKEN = "crane-dev-admin";

export const isDevelopment = (env: Env) => env.ENVIRONMENT === "development";

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The tenant an API key belongs to, or null for a missing, unknown or revoked key. */
export async function tenantForKey(env: Env, key: string): Promise<string | null> {
  if (key === DEV_API_KEY) return isDevelopment(env) ? DEV_TENANT : null;
  const row = await drizzle(env.DB)
    .select({ tenant: apiKeys.tenant })
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, await sha256Hex(key)), isNull(apiKeys.revokedAt)))
    .get();
  return row?.tenant ?? null;
}

/** `Authorization: Bearer <key>`, or for a WebSocket upgrade the subprotocol `bearer.<key>`. */
function presentedKey(req: { header(name: string): string | undefined }): string | null {
  const auth = req.header("Authorization");
  if (auth?.toLowerCase().startsWith("bearer ")) return auth.slice(7).trim() || null;
  if (req.header("Upgrade")?.toLowerCase() === "websocket") {
    const protocols = (req.header("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim());
    const bearer = protocols.find((p) => p.startsWith("bearer."));
    if (bearer) return bearer.slice("bearer.".length) || null;
  }
  return null;
}

const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="crane"' };

/** Resolves the caller's tenant from its API key; every record the request touches carries it. */
export const requireApiKey = createMiddleware<AppEnv>(async (c, next) => {
  const key = presentedKey(c.req);
  if (!key) {
    throw new ApiError(401, "Missing API key: send 'Authorization: Bearer <api key>'", { headers: CHALLENGE });
  }
  if (key.length > 256) throw new ApiError(401, "Unknown API key", { headers: CHALLENGE });
  const tenant = await tenantForKey(c.env, key);
  if (!tenant) throw new ApiError(401, "Unknown API key", { headers: CHALLENGE });
  c.set("tenant", tenant);
  await next();
});
