import { createMiddleware } from "hono/factory";
import { ApiError } from "../../http/problem";
import type { AppEnv } from "../types";
import { authenticate, CHALLENGE, DEV_ADMIN_TOKEN, isDevelopment } from "./auth";

const encoder = new TextEncoder();

/** Compares secrets in constant time (by their hashes, so lengths never leak either). */
async function sameSecret(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([a, b].map((s) => crypto.subtle.digest("SHA-256", encoder.encode(s))));
  return crypto.subtle.timingSafeEqual(ha as ArrayBuffer, hb as ArrayBuffer);
}

/** The admin token (secret ADMIN_TOKEN), or `crane-dev-admin` in development. An API key here is a 403. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const auth = c.req.header("Authorization");
  const token = auth?.toLowerCase().startsWith("bearer ") ? auth.slice(7).trim() : "";
  if (!token)
    throw new ApiError(401, "Missing admin token: send 'Authorization: Bearer <admin token>'", { headers: CHALLENGE });
  const configured = c.env.ADMIN_TOKEN ?? "";
  const ok =
    (configured.length > 0 && (await sameSecret(token, configured))) ||
    (isDevelopment(c.env) && (await sameSecret(token, DEV_ADMIN_TOKEN)));
  if (ok) return next();
  if (await authenticate(c.env, c.req, token)) {
    throw new ApiError(403, "API keys cannot use admin routes; use the admin token");
  }
  throw new ApiError(401, "Unknown admin token", { headers: CHALLENGE });
});
