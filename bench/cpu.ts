/**
 * The runtime's CPU per run: calc-dag at 16 in flight, Crane (inline placement, as `npm run dev`)
 * against the floor (`bench/peers/floor`), in alternating rounds on fresh `wrangler dev`s. Locally
 * one workerd thread does all the work, so CPU time per run is what throughput is made of, and it
 * moves far less from run to run than runs/s on a shared machine. CPU is user + system time of the
 * runtime's processes (from /proc), from the first timed run until the archive has settled; beside
 * it, the time of workerd's busiest thread, which bounds runs/s (wrangler's proxy, in Node, runs
 * on the other core).
 *
 *   node bench/cpu.ts                 # 3 rounds of 600 runs each
 *   node bench/cpu.ts --rounds 5 --runs 1000
 */

import { writeFileSync } from "node:fs";
import path from "node:path";
import { type CalcEngine, calcEngines, runs, SETTLE_MS, startWarm } from "./calc-engines.ts";
import { busiestThreadS, group, pool, workerdThreads } from "./proc.ts";
import { DEV_TOOLING } from "./tooling.ts"; // sets the environment every wrangler dev below starts with

const argv = process.argv.slice(2);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const ROUNDS = Number(option("--rounds") ?? 3);
const RUNS = Number(option("--runs") ?? 600);
const CONCURRENCY = 16;
const ROOT = path.resolve(import.meta.dirname, "..");

async function round(name: CalcEngine): Promise<{ cpuMsPerRun: number; threadMsPerRun: number; runsPerS: number }> {
  const w = await startWarm(name);
  try {
    const before = group(w.pgid as number).cpuS;
    const threadsBefore = workerdThreads(w.pgid as number);
    const t0 = performance.now();
    await pool(runs(RUNS), CONCURRENCY, () => calcEngines[name].one(w));
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const cpuS = group(w.pgid as number).cpuS - before;
    const threadS = busiestThreadS(threadsBefore, workerdThreads(w.pgid as number));
    return { cpuMsPerRun: (cpuS * 1000) / RUNS, threadMsPerRun: (threadS * 1000) / RUNS, runsPerS: RUNS / seconds };
  } finally {
    w.dispose();
  }
}

const rounds: {
  crane: number;
  floor: number;
  ratio: number;
  crane_thread: number;
  floor_thread: number;
  thread_ratio: number;
  crane_runs_per_s: number;
  floor_runs_per_s: number;
}[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const floor = await round("floor");
  const crane = await round("crane");
  const r = {
    crane: Number(crane.cpuMsPerRun.toFixed(2)),
    floor: Number(floor.cpuMsPerRun.toFixed(2)),
    ratio: Number((floor.cpuMsPerRun / crane.cpuMsPerRun).toFixed(2)),
    crane_thread: Number(crane.threadMsPerRun.toFixed(2)),
    floor_thread: Number(floor.threadMsPerRun.toFixed(2)),
    thread_ratio: Number((floor.threadMsPerRun / crane.threadMsPerRun).toFixed(2)),
    crane_runs_per_s: Number(crane.runsPerS.toFixed(1)),
    floor_runs_per_s: Number(floor.runsPerS.toFixed(1)),
  };
  rounds.push(r);
  console.log(
    `round ${i + 1}: CPU ms per run crane ${r.crane}, floor ${r.floor} (floor / crane ${r.ratio}); ` +
      `workerd's busiest thread crane ${r.crane_thread}, floor ${r.floor_thread} (${r.thread_ratio})`,
  );
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
const result = {
  at: new Date().toISOString(),
  dev_tooling: DEV_TOOLING,
  command: `node bench/cpu.ts --rounds ${ROUNDS} --runs ${RUNS}`,
  plan: "calc-dag, inline placement, 16 in flight",
  cpu_ms_per_run: { crane: median(rounds.map((r) => r.crane)), floor: median(rounds.map((r) => r.floor)) },
  /** The floor's CPU per run over Crane's: the runs/s ratio the machine's CPU allows. */
  floor_over_crane: median(rounds.map((r) => r.ratio)),
  /** The same for workerd's busiest thread: the one that runs every Worker and object locally. */
  thread_ms_per_run: {
    crane: median(rounds.map((r) => r.crane_thread)),
    floor: median(rounds.map((r) => r.floor_thread)),
  },
  thread_floor_over_crane: median(rounds.map((r) => r.thread_ratio)),
  rounds,
};
console.log(JSON.stringify(result, null, 2));
writeFileSync(
  path.join(ROOT, "bench/results", `${result.at.replaceAll(":", "-")}-cpu.json`),
  `${JSON.stringify(result, null, 2)}\n`,
);
