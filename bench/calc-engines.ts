/**
 * Crane and the floor, each on its own `wrangler dev`, running calc-dag at inline placement: the
 * pair that bench/cpu.ts and bench/profile.ts measure.
 */
import { LocalCrane } from "../scripts/local-wrangler.ts";
import { calcDag } from "./plans.ts";
import { pool } from "./proc.ts";

export const calcEngines = {
  crane: {
    create: () => new LocalCrane(),
    one: async (w: LocalCrane) => {
      const res = await w.api("/api/v1/runs", { method: "POST", json: calcDag });
      const run = (await res.json()) as { status?: string; result?: unknown };
      if (res.status !== 201 || run.status !== "completed" || run.result !== 1133) throw new Error(JSON.stringify(run));
    },
  },
  floor: {
    create: () => new LocalCrane("bench/peers/floor/wrangler.toml", "/health"),
    one: async (w: LocalCrane) => {
      const res = await fetch(`${w.url}/run?scenario=calc-dag&placement=inline`, { method: "POST" });
      const run = (await res.json()) as { status?: string; result?: unknown };
      if (run.status !== "completed" || run.result !== 1133) throw new Error(JSON.stringify(run));
    },
  },
};
export type CalcEngine = keyof typeof calcEngines;

/** The gate writes a run's archive a second after it ends: a measurement waits this long for it. */
export const SETTLE_MS = 2500;

export const runs = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Starts an engine with the rate and run limits out of the way and logs at `warn`, warms it up
 * (100 runs: the gate exists, the code is compiled) and waits for their archives to settle.
 * The caller disposes of it (a start that fails is disposed of here).
 */
export async function startWarm(name: CalcEngine): Promise<LocalCrane> {
  const w = calcEngines[name].create();
  try {
    if (name === "crane") w.migrate();
    await w.start({ RATE_LIMIT_REQUESTS: "100000000", MAX_ACTIVE_RUNS: "100000", LOG_LEVEL: "warn" });
    await pool(runs(100), 8, () => calcEngines[name].one(w));
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return w;
  } catch (err) {
    w.dispose();
    throw err;
  }
}
