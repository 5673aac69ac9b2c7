import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

export interface Admission {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the current window ends. */
  resetMs: number;
}

/**
 * One per tenant: the request rate of each of its API keys (fixed windows) and its set of
 * active runs (the concurrency quota). A Durable Object because the quota must be exact — two
 * simultaneous POSTs must not both take the last slot — and per tenant so that no single object
 * sees every tenant's traffic. Window counters live in memory: an eviction forgets a partial
 * window, which errs towards letting a client through; active runs are stored.
 */
export class TenantGate extends DurableObject<Env> {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS active_runs (run_id TEXT PRIMARY KEY, since INTEGER NOT NULL)");
  }

  /** Counts one request of `keyId` against `limit` per `windowMs`. */
  async admit(keyId: string, limit: number, windowMs: number): Promise<Admission> {
    const now = Date.now();
    const start = now - (now % windowMs);
    const w = this.windows.get(keyId);
    const current = w && w.start === start ? w : { start, count: 0 };
    const allowed = current.count < limit;
    if (allowed) current.count++;
    this.windows.set(keyId, current);
    return { allowed, limit, remaining: Math.max(0, limit - current.count), resetMs: start + windowMs - now };
  }

  /** Takes a slot for a new run unless the tenant already has `max` active. Idempotent per run. */
  async acquireRun(runId: string, max: number): Promise<{ allowed: boolean; active: number }> {
    const sql = this.ctx.storage.sql;
    const known = sql.exec("SELECT 1 FROM active_runs WHERE run_id = ?", runId).toArray().length > 0;
    const active = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM active_runs").one().n;
    if (known) return { allowed: true, active };
    if (active >= max) return { allowed: false, active };
    sql.exec("INSERT INTO active_runs (run_id, since) VALUES (?, ?)", runId, Date.now());
    return { allowed: true, active: active + 1 };
  }

  /** Frees a finished run's slot (its coordinator calls this through its outbox). */
  async releaseRun(runId: string): Promise<void> {
    this.ctx.storage.sql.exec("DELETE FROM active_runs WHERE run_id = ?", runId);
  }
}

export interface GateApi {
  admit(keyId: string, limit: number, windowMs: number): Promise<Admission>;
  acquireRun(runId: string, max: number): Promise<{ allowed: boolean; active: number }>;
  releaseRun(runId: string): Promise<void>;
}

export function gateStub(env: Env, tenant: string): GateApi {
  return env.GATES.get(env.GATES.idFromName(tenant)) as unknown as GateApi;
}
