import { DurableObject } from "cloudflare:workers";
import { intVar } from "../config";
import type { Env } from "../env";
import { count, countedStub, counting } from "../observability/cost";
import {
  type Admission,
  admit,
  type BreakerConfig,
  type BreakerState,
  closedBreaker,
  DEFAULT_BREAKER,
  recordOutcome,
} from "./state";

export function breakerConfig(env: Env): BreakerConfig {
  return {
    threshold: intVar(env.BREAKER_THRESHOLD, DEFAULT_BREAKER.threshold),
    windowMs: intVar(env.BREAKER_WINDOW_MS, DEFAULT_BREAKER.windowMs),
    cooldownMs: intVar(env.BREAKER_COOLDOWN_MS, DEFAULT_BREAKER.cooldownMs),
    probeLeaseMs: intVar(env.BREAKER_PROBE_LEASE_MS, DEFAULT_BREAKER.probeLeaseMs),
  };
}

/** What `GET /tools` shows of a breaker. */
export interface BreakerView {
  state: BreakerState["phase"];
  failures: number;
  opened_at: string | null;
}

/**
 * One per tenant and tool, shared by that tenant's runs: the authority on the breaker's state. Consumers do not ask
 * it on every step: they keep a copy for a second (see `BreakerClient`) and only report failures
 * and probe outcomes, so a healthy tool's steps never wait on this object.
 */
export class ToolBreaker extends DurableObject<Env> {
  private state: BreakerState = closedBreaker();
  private readonly cfg: BreakerConfig;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.cfg = breakerConfig(env);
    ctx.blockConcurrencyWhile(async () => {
      this.state = (await ctx.storage.get<BreakerState>("state")) ?? closedBreaker();
    });
  }

  async current(): Promise<BreakerState> {
    return this.state;
  }

  async acquire(): Promise<{ state: BreakerState; admission: Admission }> {
    const result = admit(this.state, Date.now(), this.cfg);
    if (result.state !== this.state) await this.save(result.state);
    return result;
  }

  async report(ok: boolean): Promise<BreakerState> {
    const next = recordOutcome(this.state, ok, Date.now(), this.cfg);
    if (next !== this.state) await this.save(next);
    return this.state;
  }

  private async save(next: BreakerState): Promise<void> {
    this.state = next;
    if (counting(this.env)) count("do_rows_written");
    await this.ctx.storage.put("state", next);
  }
}

export interface BreakerApi {
  current(): Promise<BreakerState>;
  acquire(): Promise<{ state: BreakerState; admission: Admission }>;
  report(ok: boolean): Promise<BreakerState>;
}

/**
 * The breaker of one tool for one tenant. Per tenant because what trips a breaker (timeouts,
 * failures) is mostly caused by the tenant's own inputs: one tenant's sleeps that time out must
 * never refuse another tenant's steps. `name` is a tool, or `planner` for the LLM planner.
 */
export function breakerStub(env: Env, tenant: string, name: string): BreakerApi {
  const stub = env.BREAKERS.get(env.BREAKERS.idFromName(`${tenant}/${name}`)) as unknown as BreakerApi;
  return counting(env) ? countedStub(stub) : stub;
}

export const viewOf = (s: BreakerState, cfg: BreakerConfig, now = Date.now()): BreakerView => ({
  state: s.phase === "open" && s.openedAt !== null && now >= s.openedAt + cfg.cooldownMs ? "half_open" : s.phase,
  failures: s.failures.filter((t) => t > now - cfg.windowMs).length,
  opened_at: s.openedAt === null ? null : new Date(s.openedAt).toISOString(),
});

/** How long a consumer trusts its copy of a closed breaker before refreshing it in the background. */
const CACHE_MS = 1000;
const cache = new Map<string, { state: BreakerState; at: number }>();

/**
 * The consumer's side: decides from a per-isolate copy of each breaker when it can (closed:
 * no round trip), asks the breaker object only when the copy says open or half-open, and reports
 * what the breaker needs to know.
 */
export const BreakerClient = {
  async admit(env: Env, tenant: string, tool: string, waitUntil: (p: Promise<unknown>) => void): Promise<Admission> {
    const now = Date.now();
    const key = `${tenant}/${tool}`;
    const cached = cache.get(key);
    if (cached && cached.state.phase === "closed") {
      if (now - cached.at > CACHE_MS) {
        // The copy counts as fresh while it is refreshed: the steps of one batch ask once, not each.
        cached.at = now;
        waitUntil(this.refresh(env, tenant, tool));
      }
      return { allow: true, probe: false };
    }
    const cfg = breakerConfig(env);
    if (cached && cached.state.phase === "open" && cached.state.openedAt !== null) {
      const reopensAt = cached.state.openedAt + cfg.cooldownMs;
      if (now < reopensAt) return { allow: false, retryAfterMs: reopensAt - now };
    }
    const { state, admission } = await breakerStub(env, tenant, tool).acquire();
    cache.set(key, { state, at: now });
    return admission;
  },

  async refresh(env: Env, tenant: string, tool: string): Promise<void> {
    cache.set(`${tenant}/${tool}`, { state: await breakerStub(env, tenant, tool).current(), at: Date.now() });
  },

  /** Failures that say something about the tool's health, and probe outcomes, go to the breaker. */
  async report(env: Env, tenant: string, tool: string, ok: boolean, probe: boolean): Promise<void> {
    if (ok && !probe) return;
    cache.set(`${tenant}/${tool}`, { state: await breakerStub(env, tenant, tool).report(ok), at: Date.now() });
  },
};
