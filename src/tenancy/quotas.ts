import { intVar } from "../config";
import type { Env } from "../env";

export interface Quotas {
  requests: number;
  windowS: number;
  maxActiveRuns: number;
}

/** Default most runs of a tenant parked on waits at once (`MAX_WAITING_RUNS`). */
export const DEFAULT_MAX_WAITING_RUNS = 10_000;

export const maxWaitingRuns = (env: Env): number => intVar(env.MAX_WAITING_RUNS, DEFAULT_MAX_WAITING_RUNS);

/** The deployment's default quotas (wrangler.toml vars), for keys that carry none of their own. */
export function defaultQuotas(env: Env): Quotas {
  return {
    requests: intVar(env.RATE_LIMIT_REQUESTS, 600),
    windowS: intVar(env.RATE_LIMIT_WINDOW_S, 60),
    maxActiveRuns: intVar(env.MAX_ACTIVE_RUNS, 50),
  };
}
