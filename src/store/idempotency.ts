import { and, eq, lt } from "drizzle-orm";
import { type BodyHash, sameBody } from "../contracts/body-hash";
import type { Database } from "./db";
import { idempotencyKeys } from "./schema";

/** How long an Idempotency-Key is remembered (docs/api.md: 24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Claims `key` for a new run, or finds the run it already names. The claim is one conditional
 * upsert, so two concurrent requests with the same key agree on one run id. An expired key is
 * taken over as if new.
 *
 * @returns the run id and whether it is a replay, or "conflict" when the key names a different body.
 */
export async function claimIdempotencyKey(
  db: Database,
  tenant: string,
  key: string,
  body: BodyHash,
  newRunId: string,
): Promise<{ runId: string; replayed: boolean } | "conflict"> {
  const now = Date.now();
  const cutoff = new Date(now - IDEMPOTENCY_TTL_MS).toISOString();
  const claimed = await db
    .insert(idempotencyKeys)
    .values({ tenant, key, bodyHash: body.hash, runId: newRunId, createdAt: new Date(now).toISOString() })
    .onConflictDoUpdate({
      target: [idempotencyKeys.tenant, idempotencyKeys.key],
      set: { bodyHash: body.hash, runId: newRunId, createdAt: new Date(now).toISOString() },
      setWhere: lt(idempotencyKeys.createdAt, cutoff),
    })
    .returning({ runId: idempotencyKeys.runId })
    .all();
  if (claimed[0]?.runId === newRunId) return { runId: newRunId, replayed: false };
  const row = await db
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.tenant, tenant), eq(idempotencyKeys.key, key)))
    .get();
  if (!row) return { runId: newRunId, replayed: false };
  return sameBody(row.bodyHash, body) ? { runId: row.runId, replayed: true } : "conflict";
}

/** Deletes keys past their 24 h (the hourly cron); an expired key is also taken over on reuse. */
export async function deleteExpiredKeys(db: Database, now = Date.now()): Promise<number> {
  const cutoff = new Date(now - IDEMPOTENCY_TTL_MS).toISOString();
  const deleted = await db.delete(idempotencyKeys).where(lt(idempotencyKeys.createdAt, cutoff)).returning().all();
  return deleted.length;
}
