/**
 * Where the runtime's CPU goes on calc-dag: starts Crane (or the floor) on its own `wrangler dev`,
 * warms it up, records a CPU profile of the Worker's isolate through workerd's inspector while
 * `--runs` calc-dags run at `--concurrency` in flight, and prints the functions that took the most
 * time per run, by self time and by inclusive time. The Worker, its Durable Objects (a run's
 * coordinator, the tenant's gate) and its queue consumer share that isolate, so one profile holds
 * them all. The `.cpuprofile` is written to the system's temporary directory (open it in Chrome
 * DevTools' Performance panel). Native work that waits (a new object's first storage access, an
 * RPC), and work of other isolates on the same thread, is charged to whatever JS frame is on the
 * stack: read the leaves with that in mind, and compare engines, not digits.
 *
 *   node bench/profile.ts                        # Crane, 600 runs at 16 in flight
 *   node bench/profile.ts --engine floor --runs 600 --concurrency 16 --top 30
 */

import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type CalcEngine, calcEngines, runs, SETTLE_MS, startWarm } from "./calc-engines.ts";
import { pool } from "./proc.ts";
import { DEV_TOOLING } from "./tooling.ts"; // sets the environment every wrangler dev below starts with

const argv = process.argv.slice(2);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const ENGINE = option("--engine") ?? "crane";
const RUNS = Number(option("--runs") ?? 600);
const CONCURRENCY = Number(option("--concurrency") ?? 16);
const TOP = Number(option("--top") ?? 25);
if (ENGINE !== "crane" && ENGINE !== "floor") throw new Error("--engine is crane or floor");

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A minimal Chrome DevTools Protocol client (wrangler's inspector proxy wants an Origin). */
async function inspector(port: number) {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error("no inspector target");
  const ws = new WebSocket(url, { headers: { Origin: "http://127.0.0.1" } } as unknown as string[]);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot connect to the inspector at ${url}`));
  });
  let next = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
  };
  return {
    send: <T>(method: string, params: object = {}) =>
      new Promise<T>((resolve) => {
        const id = ++next;
        waiting.set(id, resolve as (r: unknown) => void);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** Milliseconds per run by function, self and inclusive (a function counted once per stack). */
export function summarize(profile: Profile, count: number) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const time = new Map<number, number>();
  for (const [i, id] of profile.samples.entries()) time.set(id, (time.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const name = (n: ProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const [id, us] of time) {
    total += us;
    const leaf = byId.get(id) as ProfileNode;
    self.set(name(leaf), (self.get(name(leaf)) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const key = name(byId.get(at) as ProfileNode);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const perRun = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([k, us]) => [k, Number((us / 1000 / count).toFixed(3))] as const);
  return { msPerRun: Number((total / 1000 / count).toFixed(2)), self: perRun(self), inclusive: perRun(inclusive) };
}

const engine = calcEngines[ENGINE as CalcEngine];
const w = await startWarm(ENGINE as CalcEngine);
try {
  const cdp = await inspector(w.port + 1);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  await cdp.send("Profiler.start");
  const t0 = performance.now();
  await pool(runs(RUNS), CONCURRENCY, () => engine.one(w));
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const { profile } = await cdp.send<{ profile: Profile }>("Profiler.stop");
  cdp.close();
  const at = new Date().toISOString().replaceAll(":", "-");
  const file = path.join(os.tmpdir(), `crane-${at}-${ENGINE}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  const s = summarize(profile, RUNS);
  const idle = s.self.find(([k]) => k.startsWith("(idle)"))?.[1] ?? 0;
  console.log(
    `${ENGINE}: ${RUNS} calc-dags at ${CONCURRENCY} in flight, ${(RUNS / seconds).toFixed(1)} runs/s` +
      `${DEV_TOOLING ? " (dev tooling on)" : ""}; isolate ${s.msPerRun} ms per run sampled, ` +
      `${(s.msPerRun - idle).toFixed(2)} ms busy`,
  );
  console.log("\nself ms per run");
  for (const [k, ms] of s.self.slice(0, TOP)) console.log(`${ms.toFixed(3).padStart(8)}  ${k}`);
  console.log("\ninclusive ms per run");
  for (const [k, ms] of s.inclusive.slice(0, TOP)) console.log(`${ms.toFixed(3).padStart(8)}  ${k}`);
  console.log(`\nwrote ${file}`);
} finally {
  w.dispose();
}
