/**
 * Crane's benchmark. Starts, each with its own `wrangler dev` (own port, own state):
 *   - Crane as `npm run dev` starts it (pure tools inline, the default) — "crane";
 *   - the same Crane with INLINE_PURE_TOOLS=false (every step through the queue) — "crane-queue";
 *   - the floor (bench/peers/floor): the least a durable run can do on this platform, inline
 *     ("floor") and through its queue ("floor-queue");
 *   - a Cloudflare Workflows peer (bench/peers/workflows) — "workflows";
 *   - for the scale scenario (1,000 runs in flight), a fresh Crane with its limits raised by
 *     --var, and (full run only) a fresh floor.
 * Every engine is driven over HTTP from submit until the client knows the run completed, every
 * run's result is checked (a wrong one is a failure, not a sample), and Crane is reported as a
 * ratio to the floor measured in the same trial. Results: bench/results/<time>-<label>.json, and
 * latest.json for a complete run of this checkout's Crane.
 *
 *   npm run bench                                   # full (about 15 minutes on 2 cores)
 *   npm run bench -- --quick                        # about 5 minutes
 *   npm run bench -- --crane-dir ../bench-base --label baseline-b8fece4
 *                                                   # Crane (and wrangler) from another checkout;
 *                                                   # the floor and Workflows from this one
 *   --only calc,sleep,growth,scale,cost             # a subset (for working on the driver)
 *   --dev-tooling                                   # keep wrangler dev's local explorer and trace
 *                                                   # collector on (bench/tooling.ts: off by default)
 *   --no-settle                                     # start each engine's throughput trial at once,
 *                                                   # not once the machine is quiet (as before 2026-12-03)
 * Last, the cost of a run (bench/cost.ts): two more Crane instances (inline and queue placement)
 * with BENCH_COUNTERS=true count the billable operations of each plan, priced per million runs.
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { killGroup, portFree } from "../scripts/local-wrangler.ts";
import { COST_PLANS, type CostRow, costTable, measureCost, PRICES_SOURCE } from "./cost.ts";
import { calcDag } from "./plans.ts";
import { group, quiet } from "./proc.ts";
import { DEV_TOOLING } from "./tooling.ts"; // sets the environment every wrangler dev below starts with

const ROOT = path.resolve(import.meta.dirname, "..");
const argv = process.argv.slice(2);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
if (argv.includes("--help") || argv.includes("-h")) {
  // The usage is this file's header comment.
  const header = readFileSync(import.meta.filename, "utf8").split("*/")[0] ?? "";
  console.log(header.replace(/^\/\*\*\n?|^ \* ?/gm, ""));
  process.exit(0);
}
const QUICK = argv.includes("--quick");
const MODE = QUICK ? "quick" : "full";
const CRANE_DIR = path.resolve(option("--crane-dir") ?? ROOT);
const FOREIGN_CRANE = CRANE_DIR !== ROOT;
const ALL = "calc,sleep,growth,scale,cost";
const SECTIONS = option("--only") ?? ALL;
const ONLY = new Set(SECTIONS.split(","));
/** A subset is labelled by its sections (`full-calc`), so that its file is not read as a full run. */
const PART = SECTIONS === ALL ? "" : `-${SECTIONS.replaceAll(",", "-")}`;
const LABEL = option("--label") ?? (FOREIGN_CRANE ? `${MODE}${PART}-${path.basename(CRANE_DIR)}` : `${MODE}${PART}`);
const TRIALS = QUICK ? 3 : 5;
/** Whether a throughput trial waits for the machine to be quiet first (`quiet`). */
const SETTLE = !argv.includes("--no-settle");
/** How long each throughput trial waited for the machine to be quiet, ms. */
const settled: number[] = [];
const T0 = performance.now();
const progress = (what: string) => console.log(`[${((performance.now() - T0) / 1000).toFixed(0)} s] ${what}`);

type Json = unknown;
interface Sample {
  ms: number;
  ok: boolean;
  why?: string;
  result?: Json;
}
interface Figure {
  median: number;
  min: number;
  max: number;
}
type Fig = Figure | undefined;

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};
const figure = (xs: number[]): Figure => ({ median: percentile(xs, 50), min: Math.min(...xs), max: Math.max(...xs) });
const round = (f: Figure, digits = 1): Figure => {
  const r = (x: number) => Number(x.toFixed(digits));
  return { median: r(f.median), min: r(f.min), max: r(f.max) };
};
/** Ratios taken trial by trial (both engines measured in the same trial), then summarised. */
const ratioFig = (a: number[], b: number[]): Figure => round(figure(a.map((x, i) => x / (b[i] as number))), 2);
const same = (expected: Json) => (result: Json) => JSON.stringify(result) === JSON.stringify(expected);

// ---------- clients ----------

const KEY = "crane-dev-key";

/**
 * Follows a run on a WebSocket until its terminal message (not until `close`: under wrangler dev
 * the TCP close lags the close frame by seconds).
 */
function follow(
  url: string,
  protocols: string[],
  terminal: (m: Record<string, unknown>) => Json | undefined,
  ms: number,
) {
  return new Promise<Json>((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`run did not finish in ${ms / 1000} s`));
    }, ms);
    ws.onmessage = (e) => {
      const done = terminal(JSON.parse(String(e.data)) as Record<string, unknown>);
      if (done === undefined) return;
      clearTimeout(timer);
      ws.close();
      resolve(done);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error("websocket error"));
    };
  });
}

/** Crane: POST the run; unless it answered completed, follow its live stream to the terminal event. */
async function craneRun(base: string, body: Json, check: (r: Json) => boolean, timeoutMs = 60_000): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${base}/api/v1/runs`, {
    method: "POST",
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201)
    return { ms: performance.now() - t0, ok: false, why: `POST ${res.status}: ${await res.text()}` };
  const run = (await res.json()) as { run_id: string; status: string; result: Json };
  let result: Json = run.result;
  if (run.status !== "completed") {
    result = await follow(
      `${base.replace("http", "ws")}/api/v1/runs/${run.run_id}/live`,
      ["crane.v1", `bearer.${KEY}`],
      (m) => {
        const r = m.run as { status: string; result: Json } | undefined;
        const e = m.event as { type: string; data?: { result?: Json } } | undefined;
        if (m.type === "snapshot" && r?.status === "completed") return r.result;
        if (m.type === "event" && e?.type === "run.completed") return e.data?.result ?? null;
        if (m.type === "event" && (e?.type === "run.failed" || e?.type === "run.cancelled")) return { failed: e.data };
        return undefined;
      },
      timeoutMs,
    );
  }
  const ok = check(result);
  return { ms: performance.now() - t0, ok, result, ...(ok ? {} : { why: `result ${JSON.stringify(result)}` }) };
}

/** The floor: inline answers with the result; queue answers with the run id, then its WebSocket tells. */
async function floorRun(base: string, query: string, expected: Json, timeoutMs = 60_000): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${base}/run?${query}`, { method: "POST" });
  if (res.status !== 200) return { ms: performance.now() - t0, ok: false, why: `POST ${res.status}` };
  const run = (await res.json()) as { run_id: string; status: string; result?: Json };
  const result =
    run.status === "completed"
      ? run.result
      : await follow(
          `${base.replace("http", "ws")}/run/${run.run_id}/live`,
          [],
          (m) => (m.type === "completed" ? m.result : undefined),
          timeoutMs,
        );
  const ok = same(expected)(result);
  return { ms: performance.now() - t0, ok, ...(ok ? {} : { why: `result ${JSON.stringify(result)}` }) };
}

/** The Workflows peer answers when its instance completes. */
async function workflowRun(base: string, scenario: string, expected: Json): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${base}/run?scenario=${scenario}`, { method: "POST" });
  const body = (await res.json()) as { status: string; result: Json };
  const ok = body.status === "completed" && same(expected)(body.result);
  return { ms: performance.now() - t0, ok, ...(ok ? {} : { why: JSON.stringify(body) }) };
}

/** Runs `total` submissions with `concurrency` in flight; returns every sample and the wall time. */
async function load(concurrency: number, total: number, one: () => Promise<Sample>) {
  const samples: Sample[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        samples.push(await one().catch((err: unknown) => ({ ms: Number.NaN, ok: false, why: String(err) })));
      }
    }),
  );
  return { samples, wallMs: performance.now() - t0 };
}

// ---------- Crane plans (the floor and Workflows run the same shapes) ----------

const sleepDag = (maxParallel: number) => ({
  prompt: "sleep-dag",
  options: { max_parallel: maxParallel },
  plan: {
    steps: [
      ...[1, 2, 3].map((n) => ({ step_number: n, tool_name: "sleep", tool_input: { ms: 100 } })),
      { step_number: 4, tool_name: "calculator", tool_input: { expression: "1 + 1" }, depends_on: [1, 2, 3] },
    ],
  },
});
const fanOut = (width: number) => ({
  prompt: `fan-out ${width}`,
  options: { max_parallel: 50 },
  plan: {
    steps: Array.from({ length: width }, (_, i) => ({
      step_number: i + 1,
      tool_name: "calculator",
      tool_input: { expression: `${i} + 1` },
    })),
  },
});
const chain = (length: number) => ({
  prompt: `chain ${length}`,
  plan: {
    steps: Array.from({ length }, (_, i) => ({
      step_number: i + 1,
      tool_name: "calculator",
      tool_input: { expression: i === 0 ? "1" : `{{steps.${i}.output}} + 1` },
    })),
  },
});
const single = (tool: string, input: Json, prompt: string) => ({
  prompt,
  plan: { steps: [{ step_number: 1, tool_name: tool, tool_input: input }] },
});

// ---------- memory ----------

/** Samples a process group's RSS every `everyMs` until stopped; resolves to the peak (MiB). */
function rssSampler(pgid: number | null, everyMs = 50) {
  let on = true;
  let peak = 0;
  const done = (async () => {
    while (on && pgid) {
      peak = Math.max(peak, group(pgid).rssMiB);
      await new Promise((r) => setTimeout(r, everyMs));
    }
    return Math.round(peak);
  })();
  return () => {
    on = false;
    return done;
  };
}

// ---------- engines ----------

interface Wrangler {
  readonly port: number;
  readonly url: string;
  readonly pgid: number | null;
  readonly output: string;
  migrate(): void;
  start(vars?: Record<string, string>): Promise<void>;
  kill(): void;
  /** Kills it and removes its state. */
  dispose(): void;
}
type WranglerClass = new (config?: string, healthPath?: string) => Wrangler;

/**
 * A benchmark peer (bench/peers/<name>) under `wrangler dev`, run from a private copy of its
 * sources with its state outside that copy: wrangler reloads a worker when a file of its project
 * changes (package.json included, and wrangler's own files it bundles in), and a reload mid-run
 * loses the runs in flight — this keeps edits in the checkout from reaching the peers.
 */
class PeerWrangler implements Wrangler {
  readonly port = 18_000 + Math.floor(Math.random() * 2_000);
  readonly dir = mkdtempSync(path.join(os.tmpdir(), "crane-bench-peer-"));
  readonly persistTo = mkdtempSync(path.join(os.tmpdir(), "crane-bench-peer-state-"));
  output = "";
  private child: ChildProcess | null = null;

  constructor(name: string) {
    cpSync(path.join(ROOT, "bench/peers", name, "src"), path.join(this.dir, "src"), { recursive: true });
    cpSync(path.join(ROOT, "bench/peers", name, "wrangler.toml"), path.join(this.dir, "wrangler.toml"));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pgid(): number | null {
    return this.child?.pid ?? null;
  }

  migrate(): void {}

  async start(vars: Record<string, string> = {}): Promise<void> {
    const args = ["dev", "-c", "wrangler.toml", "--port", String(this.port), "--ip", "127.0.0.1"];
    args.push("--persist-to", this.persistTo, "--inspector-port", String(this.port + 1));
    for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
    // The wrangler of the Crane under test: the same version as a run of Crane, and with
    // --crane-dir an installation nobody else is changing.
    this.child = spawn(path.join(CRANE_DIR, "node_modules/.bin/wrangler"), args, {
      cwd: this.dir,
      env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      detached: true, // its own process group: kill() takes workerd down with wrangler
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (d) => {
      this.output += String(d);
    });
    this.child.stderr?.on("data", (d) => {
      this.output += String(d);
    });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const status = await fetch(`${this.url}/health`).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`wrangler dev (peer) did not start:\n${this.output.slice(-3000)}`);
  }

  kill(): void {
    killGroup(this.child);
    this.child = null;
  }

  dispose(): void {
    this.kill();
    for (const dir of [this.dir, this.persistTo]) rmSync(dir, { recursive: true, force: true });
  }
}

const launched: { name: string; w: Wrangler }[] = [];
// Interrupted (Ctrl-C, a timeout): take every wrangler down with the driver.
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    for (const { w } of launched) w.dispose();
    process.exit(130);
  });
const usedPorts = new Set<number>();

/**
 * Starts a wrangler on a port (and inspector port + 1) that no other instance here and nothing
 * else on the machine holds — the launcher picks ports at random, and a clash would let one
 * instance's health check be answered by another — and tries another port if it fails to start.
 */
async function launch(
  name: string,
  make: () => Wrangler,
  vars: Record<string, string> = {},
  migrate = false,
): Promise<Wrangler> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    let w = make();
    while (
      usedPorts.has(w.port) ||
      usedPorts.has(w.port + 1) ||
      !(await portFree(w.port)) ||
      !(await portFree(w.port + 1))
    )
      w = make();
    usedPorts.add(w.port);
    usedPorts.add(w.port + 1);
    launched.push({ name, w });
    try {
      if (migrate) w.migrate();
      await w.start(vars);
      return w;
    } catch (err) {
      last = err;
      w.kill();
      console.error(`a wrangler failed to start on port ${w.port}; trying another (${String(err).slice(0, 200)})`);
    }
  }
  throw last;
}

const git = (dir: string, ...args: string[]) => execFileSync("git", args, { cwd: dir }).toString().trim();

/** Crane's own launcher, from the checkout under test (so `wrangler dev` runs there). */
async function craneLauncher(): Promise<WranglerClass> {
  const mod = (await import(path.join(CRANE_DIR, "scripts/local-wrangler.ts"))) as { LocalCrane: WranglerClass };
  // A checkout whose wrangler.toml serves built assets needs them before wrangler starts.
  const toml = readFileSync(path.join(CRANE_DIR, "wrangler.toml"), "utf8");
  if (/^\[assets\]/m.test(toml) && existsSync(path.join(CRANE_DIR, "scripts/build.mjs")))
    if (!existsSync(path.join(CRANE_DIR, "dist/public/index.html")))
      execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: CRANE_DIR, stdio: "inherit" });
  return mod.LocalCrane;
}

// ---------- main ----------

const results: Record<string, unknown> = {};
const ratios: Record<string, Figure> = {};
const failures: string[] = [];
const notes: string[] = [];

/** The runs that came back right; a wrong or failed one is recorded as a failure. */
function check(name: string, samples: Sample[]): number[] {
  const bad = samples.filter((s) => !s.ok);
  if (bad.length > 0)
    failures.push(`${name}: ${bad.length} of ${samples.length} runs wrong or failed (first: ${bad[0]?.why ?? "?"})`);
  return samples.filter((s) => s.ok).map((s) => s.ms);
}

interface Engine {
  name: string;
  one: () => Promise<Sample>;
  pgid: number | null;
}

/**
 * `total` runs at `concurrency`, TRIALS times, the engines interleaved within each trial (order
 * rotated per trial) so that they share the machine's moment. Returns per-engine per-trial figures.
 */
async function throughput(scenario: string, concurrency: number, total: number, engines: Engine[], rss = false) {
  const per: Record<string, { rps: number[]; p50: number[]; p95: number[]; p99: number[]; peak: number }> = {};
  for (const e of engines) per[e.name] = { rps: [], p50: [], p95: [], p99: [], peak: 0 };
  for (let t = 0; t < TRIALS; t++) {
    for (let k = 0; k < engines.length; k++) {
      const e = engines[(k + t) % engines.length] as Engine;
      if (SETTLE) settled.push(await quiet());
      const stop = rss ? rssSampler(e.pgid) : null;
      const { samples, wallMs } = await load(concurrency, total, e.one);
      const peak = (await stop?.()) ?? 0;
      const ms = check(`${scenario} c${concurrency} ${e.name}`, samples);
      const p = per[e.name] as (typeof per)[string];
      p.rps.push((ms.length / wallMs) * 1000);
      p.p50.push(percentile(ms, 50));
      p.p95.push(percentile(ms, 95));
      p.p99.push(percentile(ms, 99));
      p.peak = Math.max(p.peak, peak);
    }
  }
  for (const [name, p] of Object.entries(per)) {
    results[`${scenario}.c${concurrency}.${name}`] = {
      runs_per_s: round(figure(p.rps)),
      p50_ms: round(figure(p.p50)),
      p95_ms: round(figure(p.p95)),
      p99_ms: round(figure(p.p99)),
      runs_per_trial: total,
      ...(p.peak > 0 ? { peak_rss_mib: p.peak } : {}),
    };
  }
  return per;
}

/** One run of each engine in turn, `n` times: the p50 (and min–max) of each engine's runs. */
async function latency(name: string, n: number, engines: Engine[]) {
  const per: Record<string, number[]> = {};
  const bad: Record<string, Sample[]> = {};
  for (const e of engines) {
    per[e.name] = [];
    bad[e.name] = [];
  }
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < engines.length; k++) {
      const e = engines[(k + i) % engines.length] as Engine;
      const s = await e.one().catch((err: unknown) => ({ ms: Number.NaN, ok: false, why: String(err) }));
      if (s.ok) per[e.name]?.push(s.ms);
      else bad[e.name]?.push(s);
    }
  }
  for (const e of engines) {
    const b = bad[e.name] ?? [];
    if (b.length > 0) failures.push(`${name} ${e.name}: ${b.length} of ${n} runs wrong or failed (${b[0]?.why})`);
  }
  return per;
}

async function main() {
  const CraneWrangler = await craneLauncher();
  const craneCommit = git(CRANE_DIR, "rev-parse", "--short", "HEAD");
  const craneDirty = git(CRANE_DIR, "status", "--porcelain", "--", "src", "wrangler.toml", "package.json") !== "";
  const quotas = { LOG_LEVEL: "warn", RATE_LIMIT_REQUESTS: "100000000", MAX_ACTIVE_RUNS: "100000" };
  const started = performance.now();
  let scale: Record<string, unknown> | null = null;
  const peer = (name: string) => () => new PeerWrangler(name);

  try {
    const [crane, craneQueue, floor, workflows, scaleCrane, scaleFloor] = await Promise.all([
      launch("crane", () => new CraneWrangler(), quotas, true),
      launch("crane-queue", () => new CraneWrangler(), { ...quotas, INLINE_PURE_TOOLS: "false" }, true),
      launch("floor", peer("floor")),
      launch("workflows", peer("workflows")),
      ONLY.has("scale") ? launch("scale crane", () => new CraneWrangler(), scaleVars(), true) : null,
      ONLY.has("scale") && !QUICK ? launch("scale floor", peer("floor")) : null,
    ]);
    progress("started");
    const C = crane.url;
    const Q = craneQueue.url;
    const F = floor.url;
    const W = workflows.url;
    const fl = (q: string, expected: Json) => () => floorRun(F, q, expected);

    notes.push(
      "Ratios are Crane's figure over the floor's (or Workflows' over the floor's), taken trial by trial within one run; medians [min–max] over trials.",
      "Clients: an inline run (Crane, floor) completes inside its POST; a queued one (crane-queue, floor-queue, sleep-dag, scale sleeps and todos) is followed on its WebSocket until the terminal message; Workflows answers its POST when the instance completes.",
      "floor-queue computes a join in the object, so its calc-dag is one queue hop; crane-queue sends the join through the queue too (two hops). Crane (inline placement) runs sleep-dag's join in the coordinator, like the floor.",
      "Per step of a chain = the whole run's p50 / its steps; slope = (p50 at L − p50 at 1) / (L − 1).",
    );
    // Crane's plan limit decides the longest chain it can run in one plan.
    const probe = await craneRun(C, chain(100), same(100));
    const craneMaxChain = probe.ok ? 100 : 50;
    if (!probe.ok) notes.push(`Crane refuses a 100-step plan (${probe.why?.slice(0, 120)}): chains stop at 50 steps`);

    // Warm everything up (module load, first Durable Objects, first queue batches).
    const calc = {
      crane: () => craneRun(C, calcDag, same(1133)),
      "crane-queue": () => craneRun(Q, calcDag, same(1133)),
      floor: fl("scenario=calc-dag&placement=inline", 1133),
      "floor-queue": fl("scenario=calc-dag&placement=queue", 1133),
      workflows: () => workflowRun(W, "calc-dag", 1133),
    };
    for (const one of Object.values(calc)) await load(4, 24, one);
    await load(2, 4, () => craneRun(C, sleepDag(8), same(2)));
    await load(2, 4, fl("scenario=sleep-dag&placement=queue", 300));
    await load(2, 4, () => workflowRun(W, "sleep-dag", 300));

    progress("warmed up");
    if (ONLY.has("calc")) {
      // calc-dag at 1 and 16 in flight (64 in the full run), all five engines in every trial.
      const pgids: Record<string, number | null> = {
        crane: crane.pgid,
        "crane-queue": craneQueue.pgid,
        floor: floor.pgid,
        "floor-queue": floor.pgid,
        workflows: workflows.pgid,
      };
      const engines = Object.entries(calc).map(([name, one]) => ({ name, one, pgid: pgids[name] ?? null }));
      const levels = QUICK ? [1, 16] : [1, 16, 64];
      for (const c of levels) {
        const total = c === 1 ? (QUICK ? 20 : 100) : c === 16 ? (QUICK ? 64 : 300) : 320;
        const per = await throughput("calc-dag", c, total, engines, c === levels.at(-1));
        const r = (a: string, b: string, field: "rps" | "p50" | "p99") =>
          ratioFig(per[a]?.[field] as number[], per[b]?.[field] as number[]);
        for (const [field, key] of [
          ["rps", "runs_per_s"],
          ["p50", "p50_ms"],
          ["p99", "p99_ms"],
        ] as const) {
          ratios[`calc-dag.c${c}.${key}.crane/floor`] = r("crane", "floor", field);
          ratios[`calc-dag.c${c}.${key}.crane-queue/floor-queue`] = r("crane-queue", "floor-queue", field);
          ratios[`calc-dag.c${c}.${key}.workflows/floor`] = r("workflows", "floor", field);
          ratios[`calc-dag.c${c}.${key}.crane/workflows`] = r("crane", "workflows", field);
        }
      }
    }

    progress("calc-dag done");
    if (ONLY.has("sleep")) {
      // sleep-dag: three 100 ms sleeps through the queue in parallel, then a join; one at a
      // time (latency) and 16 in flight (throughput through the queue).
      const sleepers = [
        { name: "crane", one: () => craneRun(C, sleepDag(8), same(2)), pgid: null },
        { name: "floor-queue", one: fl("scenario=sleep-dag&placement=queue", 300), pgid: null },
        { name: "workflows", one: () => workflowRun(W, "sleep-dag", 300), pgid: null },
      ];
      // The full run also times Crane with max_parallel 1, for the speedup of running in parallel.
      const sequential = { name: "crane-sequential", one: () => craneRun(C, sleepDag(1), same(2)), pgid: null };
      const per1 = await throughput("sleep-dag", 1, QUICK ? 5 : 15, QUICK ? sleepers : [...sleepers, sequential]);
      const per16 = await throughput("sleep-dag", 16, QUICK ? 32 : 96, sleepers);
      const r = (per: typeof per1, a: string, b: string, field: "rps" | "p50") =>
        ratioFig(per[a]?.[field] ?? [], per[b]?.[field] ?? []);
      ratios["sleep-dag.c1.p50_ms.crane/floor-queue"] = r(per1, "crane", "floor-queue", "p50");
      ratios["sleep-dag.c1.p50_ms.workflows/floor-queue"] = r(per1, "workflows", "floor-queue", "p50");
      if (!QUICK) ratios["sleep-dag.speedup_parallel_vs_sequential"] = r(per1, "crane-sequential", "crane", "p50");
      ratios["sleep-dag.c16.runs_per_s.crane/floor-queue"] = r(per16, "crane", "floor-queue", "rps");
      ratios["sleep-dag.c16.runs_per_s.workflows/floor-queue"] = r(per16, "workflows", "floor-queue", "rps");
    }

    progress("sleep-dag done");
    if (ONLY.has("growth")) {
      // How cost grows with fan-out width and chain length, both placements, Crane and the floor.
      const n = QUICK ? 3 : 9;
      const growth: Record<"fan_out" | "chain", Record<string, Record<string, unknown>>> = { fan_out: {}, chain: {} };
      const shapes: ["fan_out" | "chain", number][] = [
        ...[1, 2, 4, 8, 16, 32, 50].map((w) => ["fan_out", w] as ["fan_out", number]),
        ...[1, 10, 25, 50, 100].map((l) => ["chain", l] as ["chain", number]),
      ];
      const chainMs: Record<string, Record<number, number[]>> = {};
      for (const [shape, size] of shapes) {
        const body = shape === "fan_out" ? fanOut(size) : chain(size);
        const q = `scenario=${shape === "fan_out" ? "fan-out" : "chain"}&n=${size}`;
        const engines: Engine[] = [
          { name: "floor", one: fl(`${q}&placement=inline`, size), pgid: null },
          { name: "floor-queue", one: fl(`${q}&placement=queue`, size), pgid: null },
        ];
        if (shape === "fan_out" || size <= craneMaxChain)
          engines.push(
            { name: "crane", one: () => craneRun(C, body, same(size)), pgid: null },
            { name: "crane-queue", one: () => craneRun(Q, body, same(size)), pgid: null },
          );
        const per = await latency(`${shape} ${size}`, n, engines);
        const row: Record<string, unknown> = {};
        for (const [name, ms] of Object.entries(per)) {
          row[name] = { p50_ms: round(figure(ms)), ms_per_step: Number((percentile(ms, 50) / size).toFixed(2)) };
          if (shape === "chain") {
            chainMs[name] ??= {};
            (chainMs[name] as Record<number, number[]>)[size] = ms;
          }
        }
        growth[shape][String(size)] = row;
      }
      results.growth = growth;
      // Per step of the longest chain Crane runs (100, or 50 under a 50-step plan limit): the
      // whole run over its steps, and the slope against a 1-step chain.
      const L = craneMaxChain;
      const perStep: Record<string, unknown> = { length: L };
      for (const [name, byLen] of Object.entries(chainMs)) {
        const long = byLen[L] ?? [];
        const one = byLen[1] ?? [];
        perStep[name] = {
          per_step_ms: round(figure(long.map((x) => x / L)), 2),
          marginal_ms: Number(((percentile(long, 50) - percentile(one, 50)) / (L - 1)).toFixed(2)),
        };
      }
      results[`chain.${L}.per_step`] = perStep;
      const c = chainMs.crane?.[L] ?? [];
      const cq = chainMs["crane-queue"]?.[L] ?? [];
      const f = chainMs.floor?.[L] ?? [];
      const fq = chainMs["floor-queue"]?.[L] ?? [];
      ratios[`chain.${L}.per_step.crane/floor`] = ratioFig(c, f);
      ratios[`chain.${L}.per_hop.crane-queue/floor-queue`] = ratioFig(cq, fq);
    }

    progress("growth curves done");
    // The scale scenario gets the machine to itself.
    for (const w of [crane, craneQueue, floor, workflows]) w.kill();
    if (ONLY.has("scale")) {
      // Each alone on a fresh instance: the floor first (the full run only, to keep --quick
      // short), then Crane.
      const f = scaleFloor ? await scaleScenario("floor", floorScale(scaleFloor)) : null;
      scaleFloor?.kill();
      if (f) progress("scale: floor done");
      const c = await scaleScenario("crane", craneScale(scaleCrane as Wrangler));
      const ratio = (field: string) => (f ? Number(((c[field] as number) / (f[field] as number)).toFixed(2)) : null);
      scale = {
        vars: scaleVars(),
        crane: c,
        floor: f,
        ratios: {
          "completions_per_s.crane/floor": ratio("completions_per_s"),
          "p99_ms.crane/floor": ratio("p99_ms"),
          "peak_rss_mib.crane/floor": ratio("peak_rss_mib"),
        },
      };
      progress("scale: crane done");
    }
    if (ONLY.has("cost")) {
      scaleCrane?.kill();
      results.cost = await costScenario(CraneWrangler);
      progress("cost done");
    }
  } finally {
    for (const { w } of launched) w.dispose();
  }
  // A file changed under a running wrangler (someone editing the checkout) reloads its worker
  // and loses the runs in flight: the figures are not to be trusted.
  for (const { name, w } of launched) {
    const reloads = w.output.match(/Reloading local server/g)?.length ?? 0;
    if (reloads > 0) failures.push(`${name}: wrangler reloaded ${reloads} time(s) mid-run (a file changed under it)`);
  }

  const wrangler = JSON.parse(readFileSync(path.join(CRANE_DIR, "node_modules/wrangler/package.json"), "utf8")).version;
  const targets = evaluateTargets();
  const report = {
    at: new Date().toISOString(),
    mode: MODE,
    label: LABEL,
    trials: TRIALS,
    duration_s: Math.round((performance.now() - started) / 1000),
    command: `node bench/run.ts ${argv.join(" ")}`.trim(),
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memory_gib: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.platform()} ${os.release()}`,
      loadavg_at_end: os.loadavg().map((x) => Number(x.toFixed(2))),
    },
    node: process.version,
    wrangler,
    // wrangler dev's local explorer and trace collector (bench/tooling.ts): off unless --dev-tooling.
    dev_tooling: DEV_TOOLING,
    // Throughput trials started once the machine was quiet (off with --no-settle), and how long they waited.
    settle: SETTLE && settled.length > 0 ? { waited_ms: round(figure(settled)), trials: settled.length } : SETTLE,
    bench_commit: git(ROOT, "rev-parse", "--short", "HEAD"),
    bench_uncommitted_changes: git(ROOT, "status", "--porcelain", "--", "bench", ":!bench/results") !== "",
    crane: { dir: CRANE_DIR, commit: craneCommit, uncommitted_changes: craneDirty },
    results,
    ratios,
    targets,
    scale,
    notes,
    failures,
  };
  mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
  const file = path.join(ROOT, "bench/results", `${report.at.replaceAll(":", "-")}-${LABEL}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  // latest.json is the latest run of this checkout's Crane; a run against another checkout (a
  // baseline) keeps only its own file.
  if (!FOREIGN_CRANE && ALL.split(",").every((s) => ONLY.has(s)))
    writeFileSync(path.join(ROOT, "bench/results/latest.json"), `${JSON.stringify(report, null, 2)}\n`);

  printReport(report, targets, scale);
  console.log(`\nwritten ${path.relative(ROOT, file)} (${report.duration_s} s)`);
  if (failures.length > 0) {
    console.error(`\nFAILED:\n${failures.join("\n")}`);
    process.exit(1);
  }
}

// ---------- the cost of a run ----------

const COST_RETENTION_MS = 2_000;

/**
 * Billable operations per run of each plan, both placements side by side on instances of their
 * own (counters are per isolate), priced per million runs. A Crane without the counters (an older
 * checkout under --crane-dir) is noted and skipped.
 */
async function costScenario(CraneWrangler: WranglerClass): Promise<Record<string, unknown> | null> {
  const vars = {
    LOG_LEVEL: "warn",
    RATE_LIMIT_REQUESTS: "100000000",
    MAX_ACTIVE_RUNS: "100000",
    BENCH_COUNTERS: "true",
    RUN_RETENTION_MS: String(COST_RETENTION_MS),
  };
  const [inline, queue] = await Promise.all([
    launch("cost crane", () => new CraneWrangler(), vars, true),
    launch("cost crane-queue", () => new CraneWrangler(), { ...vars, INLINE_PURE_TOOLS: "false" }, true),
  ]);
  try {
    const probe = await fetch(`${inline.url}/api/v1/admin/counters`, {
      headers: { Authorization: "Bearer crane-dev-admin" },
    });
    if (probe.status !== 200) {
      notes.push(`cost: this Crane counts no operations (/admin/counters answered ${probe.status}); skipped`);
      return null;
    }
    const runs = QUICK ? 5 : 20;
    const measured = await Promise.all([
      measureCost(inline.url, "inline", runs, COST_RETENTION_MS),
      measureCost(queue.url, "queue", runs, COST_RETENTION_MS),
    ]);
    failures.push(...measured.flatMap((m) => m.failures));
    const rows: CostRow[] = COST_PLANS.flatMap((p) => measured.flatMap((m) => m.rows.filter((r) => r.plan === p.name)));
    return {
      runs_per_plan: runs,
      retention_ms: COST_RETENTION_MS,
      rows,
      prices: PRICES_SOURCE,
      notes: [
        "Per run over its whole life: the POST, every step, waits and the request that ends them, the archive to D1, the purge after retention.",
        "Queue operations = messages written + read + deleted (each ≤ 64 KB). Worker invocations include queue consumer invocations, priced as requests (an upper bound).",
        "Not counted: the rows removed by the purge's deleteAll(), CPU time, Durable Object duration, storage, free allowances.",
      ],
    };
  } finally {
    inline.dispose();
    queue.dispose();
  }
}

// ---------- the scale scenario ----------

type Kind = "calc" | "sleep" | "todo";
interface ScaleSubject {
  wrangler: Wrangler;
  warmUp(): Promise<void>;
  /** Run `i` of the mix; a todo's text is `<tag>-<i>`. */
  submit(kind: Kind, i: number, tag: string): Promise<Sample>;
  /** How many times each todo text starting with `<tag>-` exists, or why they could not be listed. */
  todos(tag: string): Promise<Map<string, number> | string>;
}

const SCALE_RUNS = 1000;
const SCALE_TIMEOUT_MS = 180_000;

function craneScale(w: Wrangler): ScaleSubject {
  const base = w.url;
  return {
    wrangler: w,
    async warmUp() {
      await load(4, 20, () => craneRun(base, calcDag, same(1133)));
      await load(2, 4, () => craneRun(base, single("sleep", { ms: 10 }, "sleep"), same({ slept_ms: 10 })));
    },
    submit(kind, i, tag) {
      if (kind === "calc") return craneRun(base, calcDag, same(1133), SCALE_TIMEOUT_MS);
      if (kind === "sleep")
        return craneRun(base, single("sleep", { ms: 2000 }, "sleep 2 s"), same({ slept_ms: 2000 }), SCALE_TIMEOUT_MS);
      const text = `${tag}-${i}`;
      return craneRun(
        base,
        single("todo_store", { action: "add", text }, "add a todo"),
        (r) => (r as { todo?: { text?: string } } | null)?.todo?.text === text,
        SCALE_TIMEOUT_MS,
      );
    },
    // Through Crane's API: one `todo_store list` run (the tenant's todos, all of them).
    async todos(tag) {
      const s = await craneRun(base, single("todo_store", { action: "list" }, "list todos"), () => true, 120_000);
      const r = s.result as { todos?: { text: string }[] } | undefined;
      if (!r?.todos) return `list run: ${s.why ?? JSON.stringify(s.result)}`.slice(0, 300);
      const counts = new Map<string, number>();
      for (const t of r.todos) if (t.text.startsWith(`${tag}-`)) counts.set(t.text, (counts.get(t.text) ?? 0) + 1);
      return counts;
    },
  };
}

function floorScale(w: Wrangler): ScaleSubject {
  const base = w.url;
  return {
    wrangler: w,
    async warmUp() {
      await load(4, 20, () => floorRun(base, "scenario=calc-dag&placement=inline", 1133));
      await load(2, 4, () => floorRun(base, "scenario=sleep&sleep_ms=10&placement=queue", 10));
    },
    submit(kind, i, tag) {
      if (kind === "calc") return floorRun(base, "scenario=calc-dag&placement=inline", 1133, SCALE_TIMEOUT_MS);
      if (kind === "sleep")
        return floorRun(base, "scenario=sleep&sleep_ms=2000&placement=queue", 2000, SCALE_TIMEOUT_MS);
      return floorRun(base, `scenario=todo&placement=queue&text=${tag}-${i}`, 1, SCALE_TIMEOUT_MS);
    },
    async todos(tag) {
      const res = await fetch(`${base}/todos?prefix=${tag}-`);
      if (res.status !== 200) return `GET /todos ${res.status}`;
      return new Map(((await res.json()) as { text: string; n: number }[]).map((r) => [r.text, r.n]));
    },
  };
}

/**
 * 1,000 runs submitted at once: 400 inline calc-dags, 300 runs of one 2 s sleep through the
 * queue and 300 todo writes through the queue, interleaved. Every run's result is checked, then
 * every todo is counted: each must exist exactly once.
 */
async function scaleScenario(name: string, subject: ScaleSubject): Promise<Record<string, unknown>> {
  const w = subject.wrangler;
  const tag = `scale-${Date.now().toString(36)}`;
  await subject.warmUp();
  const kinds = Array.from(
    { length: SCALE_RUNS },
    (_, i): Kind => (i % 10 < 4 ? "calc" : i % 10 < 7 ? "sleep" : "todo"),
  );
  const idle = Math.round(group(w.pgid ?? 0).rssMiB);
  const stop = rssSampler(w.pgid, 100);
  const t0 = performance.now();
  const samples = await Promise.all(
    kinds.map((kind, i) =>
      subject
        .submit(kind, i, tag)
        .catch((err: unknown): Sample => ({ ms: Number.NaN, ok: false, why: String(err) }))
        .then((s) => ({ ...s, kind })),
    ),
  );
  const wallMs = performance.now() - t0;
  const peak = await stop();

  const byKind: Record<string, unknown> = {};
  for (const kind of ["calc", "sleep", "todo"] as const) {
    const ms = check(
      `scale ${name} ${kind}`,
      samples.filter((s) => s.kind === kind),
    );
    byKind[kind] = {
      runs: kinds.filter((k) => k === kind).length,
      completed: ms.length,
      p50_ms: Math.round(percentile(ms, 50)),
      p99_ms: Math.round(percentile(ms, 99)),
      max_ms: Math.round(Math.max(...ms)),
    };
  }
  const okMs = samples.filter((s) => s.ok).map((s) => s.ms);

  // Each todo exactly once.
  const counts = await subject.todos(tag);
  let todoCheck: Record<string, unknown>;
  if (typeof counts === "string") {
    todoCheck = { error: counts };
    failures.push(`scale ${name}: could not count todos (${counts})`);
  } else {
    const expected = new Set(kinds.flatMap((k, i) => (k === "todo" ? [`${tag}-${i}`] : [])));
    todoCheck = {
      expected: expected.size,
      found: counts.size,
      missing: [...expected].filter((t) => !counts.has(t)).length,
      duplicated: [...counts.values()].filter((n) => n > 1).length,
      unexpected: [...counts.keys()].filter((t) => !expected.has(t)).length,
    };
    if (todoCheck.missing !== 0 || todoCheck.duplicated !== 0 || todoCheck.unexpected !== 0)
      failures.push(`scale ${name}: todos not exactly once (${JSON.stringify(todoCheck)})`);
  }
  return {
    runs: SCALE_RUNS,
    in_flight: SCALE_RUNS,
    mix: { calc_dag_inline: 400, sleep_2s_queue: 300, todo_add_queue: 300 },
    completed: okMs.length,
    wall_s: Number((wallMs / 1000).toFixed(1)),
    completions_per_s: Number(((okMs.length / wallMs) * 1000).toFixed(1)),
    p50_ms: Math.round(percentile(okMs, 50)),
    p99_ms: Math.round(percentile(okMs, 99)),
    by_kind: byKind,
    rss_idle_mib: idle,
    peak_rss_mib: peak,
    todos_exactly_once: todoCheck,
  };
}
const scaleVars = () => ({
  MAX_ACTIVE_RUNS: "2000",
  RATE_LIMIT_REQUESTS: "1000000",
  TENANT_STEPS_PER_CONSUMER: "1000",
  LOG_LEVEL: "warn",
});

// ---------- targets and the table ----------

interface Target {
  name: string;
  figure: string;
  target: string;
  value: Fig;
  met: boolean | null;
}

/** The issue's targets (same run, this machine, inline placement), judged on the medians. */
function evaluateTargets(): Target[] {
  const perStepKey = Object.keys(results).find((k) => /^chain\.\d+\.per_step$/.test(k));
  const L = perStepKey ? Number(perStepKey.split(".")[1]) : 100;
  const perStep = perStepKey
    ? ((results[perStepKey] as Record<string, { per_step_ms: Figure }>).crane?.per_step_ms as Fig)
    : undefined;
  const t = (name: string, figureName: string, target: string, value: Fig, ok: (x: number) => boolean): Target => ({
    name,
    figure: figureName,
    target,
    value,
    met: value ? ok(value.median) : null,
  });
  return [
    t(
      "calc-dag at 16 in flight: runs/s",
      "crane / floor",
      "≥ 0.7×",
      ratios["calc-dag.c16.runs_per_s.crane/floor"],
      (x) => x >= 0.7,
    ),
    t(
      "calc-dag at 1 in flight: p50",
      "crane / floor",
      "≤ 1.5×",
      ratios["calc-dag.c1.p50_ms.crane/floor"],
      (x) => x <= 1.5,
    ),
    t(`${L}-step chain, inline: ms per step`, "crane", "≤ 1 ms", perStep, (x) => x <= 1),
    t(
      `${L}-step chain, queue: per hop`,
      "crane-queue / floor-queue",
      "≤ 1.2×",
      ratios[`chain.${L}.per_hop.crane-queue/floor-queue`],
      (x) => x <= 1.2,
    ),
    t(
      "sleep-dag through the queue: p50",
      "crane / floor-queue",
      "≤ 1.11× (≥ 0.9× its speed)",
      ratios["sleep-dag.c1.p50_ms.crane/floor-queue"],
      (x) => x <= 1 / 0.9,
    ),
    t(
      "sleep-dag through the queue, 16 in flight: runs/s",
      "crane / floor-queue",
      "≥ 0.9×",
      ratios["sleep-dag.c16.runs_per_s.crane/floor-queue"],
      (x) => x >= 0.9,
    ),
  ];
}

const fmt = (f: Fig, unit = "") => (f ? `${f.median}${unit} [${f.min}–${f.max}]` : "—");
const get = (key: string, field: string): Fig => (results[key] as Record<string, Figure> | undefined)?.[field] as Fig;

function printReport(report: Record<string, unknown>, targets: Target[], scale: Record<string, unknown> | null) {
  const m = report.machine as { cpus: number; cpu: string };
  console.log(
    `\nCrane benchmark (${report.mode}, ${LABEL}; median of ${TRIALS} trials [min–max]) — ${m.cpus} × ${m.cpu}, node ${report.node}, wrangler ${report.wrangler}, Crane ${(report.crane as { commit: string }).commit} from ${CRANE_DIR}`,
  );
  console.log(`command: ${report.command}\n`);

  console.log("Targets (ratios trial by trial, same run):\n");
  console.log("| target | figure | value | goal | met |\n|---|---|---|---|---|");
  for (const t of targets)
    console.log(
      `| ${t.name} | ${t.figure} | ${fmt(t.value)} | ${t.target} | ${t.met === null ? "—" : t.met ? "yes" : "no"} |`,
    );

  const levels = QUICK ? [1, 16] : [1, 16, 64];
  if (get("calc-dag.c1.crane", "runs_per_s")) {
    console.log(
      "\n| calc-dag | Crane | floor | Crane / floor | Crane (queue) | floor (queue) | Crane (queue) / floor (queue) | Workflows | Workflows / floor |\n|---|---|---|---|---|---|---|---|---|",
    );
    for (const c of levels) {
      for (const [field, label] of [
        ["runs_per_s", "runs/s"],
        ["p50_ms", "p50 ms"],
        ["p99_ms", "p99 ms"],
      ] as const) {
        const cell = (e: string) => fmt(get(`calc-dag.c${c}.${e}`, field));
        const r = (k: string) => fmt(ratios[`calc-dag.c${c}.${field}.${k}`]);
        console.log(
          `| ${c} in flight: ${label} | ${cell("crane")} | ${cell("floor")} | ${r("crane/floor")} | ${cell("crane-queue")} | ${cell("floor-queue")} | ${r("crane-queue/floor-queue")} | ${cell("workflows")} | ${r("workflows/floor")} |`,
        );
      }
      const peak = (e: string) =>
        (results[`calc-dag.c${c}.${e}`] as { peak_rss_mib?: number } | undefined)?.peak_rss_mib;
      if (peak("crane"))
        console.log(
          `| ${c} in flight: peak RSS MiB | ${peak("crane")} | ${peak("floor")} | | ${peak("crane-queue")} | (same process) | | ${peak("workflows")} | |`,
        );
    }
  }

  if (get("sleep-dag.c1.crane", "p50_ms")) {
    console.log(
      "\n| sleep-dag (3 × 100 ms through the queue, then a join) | Crane | floor (queue) | Crane / floor | Workflows | Workflows / floor |\n|---|---|---|---|---|---|",
    );
    console.log(
      `| 1 in flight: p50 ms | ${fmt(get("sleep-dag.c1.crane", "p50_ms"))} | ${fmt(get("sleep-dag.c1.floor-queue", "p50_ms"))} | ${fmt(ratios["sleep-dag.c1.p50_ms.crane/floor-queue"])} | ${fmt(get("sleep-dag.c1.workflows", "p50_ms"))} | ${fmt(ratios["sleep-dag.c1.p50_ms.workflows/floor-queue"])} |`,
    );
    console.log(
      `| 16 in flight: runs/s | ${fmt(get("sleep-dag.c16.crane", "runs_per_s"))} | ${fmt(get("sleep-dag.c16.floor-queue", "runs_per_s"))} | ${fmt(ratios["sleep-dag.c16.runs_per_s.crane/floor-queue"])} | ${fmt(get("sleep-dag.c16.workflows", "runs_per_s"))} | ${fmt(ratios["sleep-dag.c16.runs_per_s.workflows/floor-queue"])} |`,
    );
    if (!QUICK)
      console.log(
        `| Crane with max_parallel 1: p50 ms | ${fmt(get("sleep-dag.c1.crane-sequential", "p50_ms"))} | | speedup of parallel ${ratios["sleep-dag.speedup_parallel_vs_sequential"]?.median ?? "—"}× | | |`,
      );
  }

  const growth = results.growth as Record<
    string,
    Record<string, Record<string, { p50_ms: Figure; ms_per_step: number }>>
  >;
  if (growth) {
    console.log(
      "\n| shape (p50 ms, ms per step) | Crane | floor | Crane (queue) | floor (queue) |\n|---|---|---|---|---|",
    );
    for (const [shape, rows] of Object.entries(growth))
      for (const [size, row] of Object.entries(rows)) {
        const cell = (e: string) => (row[e] ? `${row[e].p50_ms.median} (${row[e].ms_per_step})` : "—");
        console.log(
          `| ${shape === "fan_out" ? "fan-out width" : "chain length"} ${size} | ${cell("crane")} | ${cell("floor")} | ${cell("crane-queue")} | ${cell("floor-queue")} |`,
        );
      }
    const key = Object.keys(results).find((k) => /^chain\.\d+\.per_step$/.test(k));
    if (key) {
      const ps = results[key] as Record<string, { per_step_ms: Figure; marginal_ms: number }> & { length: number };
      console.log(
        `\nper step of a ${ps.length}-step chain (whole run / steps; slope against 1 step): ${[
          "crane",
          "floor",
          "crane-queue",
          "floor-queue",
        ]
          .map((e) => `${e} ${fmt(ps[e]?.per_step_ms)} ms (slope ${ps[e]?.marginal_ms})`)
          .join(", ")}`,
      );
    }
  }

  if (scale) {
    const vars = Object.entries(scale.vars as Record<string, string>)
      .map(([a, b]) => `${a}:${b}`)
      .join(" ");
    console.log(
      `\nscale: ${SCALE_RUNS} runs in flight at once (400 inline calc-dags, 300 × 2 s sleep and 300 todo writes through the queue); Crane with --var ${vars}\n`,
    );
    console.log("| | Crane | floor | Crane / floor |\n|---|---|---|---|");
    type Side = Record<string, unknown> & { by_kind?: Record<string, { p50_ms: number; p99_ms: number }> };
    const c = scale.crane as Side;
    const f = (scale.floor ?? {}) as Side;
    const r = scale.ratios as Record<string, number | null>;
    const v = (x: unknown) => (x === undefined || x === null ? "—" : String(x));
    const row = (label: string, a: unknown, b: unknown, ratio?: number | null) =>
      console.log(`| ${label} | ${v(a)} | ${v(b)} | ${ratio === undefined ? "" : v(ratio)} |`);
    row("completed", c.completed, f.completed);
    row("wall s", c.wall_s, f.wall_s);
    row("completions/s", c.completions_per_s, f.completions_per_s, r["completions_per_s.crane/floor"]);
    row("p50 ms", c.p50_ms, f.p50_ms);
    row("p99 ms", c.p99_ms, f.p99_ms, r["p99_ms.crane/floor"]);
    for (const kind of ["calc", "sleep", "todo"]) {
      const pair = (x: Side) => (x.by_kind?.[kind] ? `${x.by_kind[kind].p50_ms} / ${x.by_kind[kind].p99_ms}` : null);
      row(`${kind}: p50 / p99 ms`, pair(c), pair(f));
    }
    row("peak RSS MiB", c.peak_rss_mib, f.peak_rss_mib, r["peak_rss_mib.crane/floor"]);
    row("idle RSS MiB", c.rss_idle_mib, f.rss_idle_mib);
    const once = (x: Side) => {
      const t = x.todos_exactly_once as Record<string, number> | undefined;
      if (!t) return null;
      return t.error
        ? `error: ${t.error}`
        : `${t.found}/${t.expected}, ${t.missing} missing, ${t.duplicated} duplicated`;
    };
    row("todos exactly once", once(c), once(f));
  }
  const cost = results.cost as { rows: CostRow[]; runs_per_plan: number; prices: string[] } | null | undefined;
  if (cost) {
    console.log(
      `\ncost of a run (billable operations per run, ${cost.runs_per_plan} runs per plan; prices:\n  ${cost.prices.join("\n  ")})\n`,
    );
    console.log(costTable(cost.rows));
  }
  if (notes.length > 0) console.log(`\nnotes:\n- ${notes.join("\n- ")}`);
}

await main();
