import type { Health } from "../contracts/tool";
import type { Env } from "../env";
import { log } from "./log";

/** How long one Worker instance reuses a health result: probes cost at most this often. */
const CACHE_MS = 5_000;
let cached: { at: number; health: Health } | null = null;

/** The reserved tenant name whose gate answers health pings (tenants cannot take it). */
export const HEALTH_GATE = "health";

async function check(
  name: string,
  requestId: string,
  probe: () => Promise<unknown>,
): Promise<Health["checks"][string]> {
  try {
    await probe();
    return { status: "ok" };
  } catch (err) {
    // The cause goes to the logs only: /health needs no key, so it never echoes internals.
    log("error", "health check failed", { request_id: requestId, check: name, error: err });
    return { status: "error", detail: `${name} is unavailable` };
  }
}

/**
 * Each dependency does one real, cheap operation: D1 a query, the Durable Objects a call to an
 * object (the reserved health gate, which stores nothing), the queue a send of a ping that its
 * consumer drops.
 */
export async function checkHealth(env: Env, requestId: string, now = Date.now()): Promise<Health> {
  if (cached && now - cached.at < CACHE_MS) return cached.health;
  const [d1, durableObjects, queue] = await Promise.all([
    check("d1", requestId, () => env.DB.prepare("SELECT 1").first()),
    check("durable_objects", requestId, () =>
      (env.GATES.get(env.GATES.idFromName(HEALTH_GATE)) as unknown as { ping(): Promise<true> }).ping(),
    ),
    check("queue", requestId, () => env.ARCHIVE.send({ health: true }, { contentType: "json" })),
  ]);
  const checks = { d1, durable_objects: durableObjects, queue };
  const health: Health = {
    status: Object.values(checks).every((ch) => ch.status === "ok") ? "healthy" : "unhealthy",
    checks,
  };
  cached = { at: now, health };
  return health;
}
