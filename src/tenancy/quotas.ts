import type { Env } from "../env";

export interface Quotas {
  requests: number;
  windowS: number;
  maxActiveRuns: number;
}

const positive = (v: string | undefined, fallback: number) => {
  const n = Number(v);
  return v !== undefined && v !== "" && Number.isInteger(n) && n > 0 ? n : fallback;
};

/** The deployment's default quotas (wrangler.toml vars), for keys that carry none of their own. */
export function defaultQuotas(env: Env): Quotas {
  return {
    requests: positive(env.RATE_LIMIT_REQUESTS, 600),
    windowS: positive(env.RATE_LIMIT_WINDOW_S, 60),
    maxActiveRuns: positive(env.MAX_ACTIVE_RUNS, 50),
  };
}
