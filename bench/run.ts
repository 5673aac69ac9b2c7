/**
 * Crane's benchmark: starts Crane with `wrangler dev` exactly as a user does (and a Cloudflare
 * Workflows peer beside it), drives both over HTTP, and prints a table plus a JSON file under
 * bench/results/. Every run it counts is checked for the right result; a wrong one is a failure.
 *
 *   npm run bench              # full
 *   npm run bench -- --quick   # under 2 minutes
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalCrane } from "../scripts/local-wrangler.ts";

const QUICK = process.argv.includes("--quick");
const TRIALS = QUICK ? 3 : 5;
const ROOT = path.resolve(import.meta.dirname, "..");

type Json = unknown;
interface Sample {
  ms: number;
  ok: boolean;
}
interface Figure {
  median: number;
  min: number;
  max: number;
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};
const figure = (xs: number[]): Figure => ({ median: percentile(xs, 50), min: Math.min(...xs), max: Math.max(...xs) });
const round = (f: Figure, digits = 1): Figure => {
  const r = (x: number) => Number(x.toFixed(digits));
  return { median: r(f.median), min: r(f.min), max: r(f.max) };
};

// ---------- drivers ----------

/** Submits a run and waits for its live stream to close: submit → client knows it completed. */
async function craneRun(base: string, body: Json, expected: Json): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${base}/api/v1/runs`, {
    method: "POST",
    headers: { Authorization: "Bearer crane-dev-key", "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) return { ms: performance.now() - t0, ok: false };
  const run = (await res.json()) as { run_id: string; status: string; result: Json };
  if (run.status === "completed")
    return { ms: performance.now() - t0, ok: JSON.stringify(run.result) === JSON.stringify(expected) };
  const result = await new Promise<Json>((resolve, reject) => {
    const ws = new WebSocket(`${base.replace("http", "ws")}/api/v1/runs/${run.run_id}/live`, [
      "crane.v1",
      "bearer.crane-dev-key",
    ]);
    let last: Json = null;
    const timer = setTimeout(() => reject(new Error("run did not finish in 60 s")), 60_000);
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as {
        type: string;
        run?: { status: string; result: Json };
        event?: { type: string; data?: { result?: Json } };
      };
      if (m.type === "snapshot" && m.run?.status === "completed") last = m.run.result;
      if (m.type === "event" && m.event?.type === "run.completed") last = m.event.data?.result ?? null;
      if (m.type === "event" && (m.event?.type === "run.failed" || m.event?.type === "run.cancelled"))
        last = { failed: true };
      if (last !== null) {
        clearTimeout(timer);
        ws.close();
        resolve(last);
      }
    };
    ws.onerror = () => reject(new Error("websocket error"));
  });
  return { ms: performance.now() - t0, ok: JSON.stringify(result) === JSON.stringify(expected) };
}

async function workflowRun(base: string, scenario: string, expected: Json): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${base}/run?scenario=${scenario}`, { method: "POST" });
  const body = (await res.json()) as { status: string; result: Json };
  return {
    ms: performance.now() - t0,
    ok: body.status === "completed" && JSON.stringify(body.result) === JSON.stringify(expected),
  };
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
        samples.push(await one().catch(() => ({ ms: Number.NaN, ok: false })));
      }
    }),
  );
  return { samples, wallMs: performance.now() - t0 };
}

// ---------- plans ----------

const calcDag = {
  prompt: "calc-dag",
  plan: {
    steps: [
      { step_number: 1, tool_name: "calculator", tool_input: { expression: "12*7" } },
      { step_number: 2, tool_name: "calculator", tool_input: { expression: "100/4" } },
      { step_number: 3, tool_name: "calculator", tool_input: { expression: "2^10" } },
      {
        step_number: 4,
        tool_name: "calculator",
        tool_input: { expression: "{{steps.1.output}} + {{steps.2.output}} + {{steps.3.output}}" },
      },
    ],
  },
};
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

// ---------- memory ----------

/** Resident memory (MiB) of every process in a process group: wrangler and its workerd. */
function groupRssMiB(pgid: number): number {
  let kib = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== pgid) continue;
      const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      kib += Number(rss?.[1] ?? 0);
    } catch (err) {
      // The process ended between listing and reading it.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "ESRCH")
        throw err;
    }
  }
  return kib / 1024;
}

// ---------- main ----------

async function main() {
  const crane = new LocalCrane();
  // The same Crane with pure tools sent through the queue, to measure both placements.
  const craneQueue = new LocalCrane();
  const peer = new LocalCrane("bench/peers/workflows/wrangler.toml", "/health");
  const quotas = { LOG_LEVEL: "warn", RATE_LIMIT_REQUESTS: "100000000", MAX_ACTIVE_RUNS: "100000" };
  const results: Record<string, unknown> = {};
  const failures: string[] = [];
  const check = (name: string, samples: Sample[]) => {
    const bad = samples.filter((s) => !s.ok).length;
    if (bad > 0) failures.push(`${name}: ${bad} of ${samples.length} runs wrong or failed`);
    return samples.filter((s) => s.ok).map((s) => s.ms);
  };

  try {
    crane.migrate();
    craneQueue.migrate();
    await Promise.all([crane.start(quotas), craneQueue.start({ ...quotas, INLINE_PURE_TOOLS: "false" }), peer.start()]);
    const C = crane.url;
    const Q = craneQueue.url;
    const P = peer.url;
    // Warm everything up (module load, first Durable Objects, first queue batch).
    await load(4, 20, () => craneRun(C, calcDag, 1133));
    await load(4, 20, () => craneRun(Q, calcDag, 1133));
    await load(4, 20, () => workflowRun(P, "calc-dag", 1133));

    // 1 + 5: calc-dag at concurrency 1, 16, 64, for both.
    for (const c of [1, 16, 64]) {
      const total = c === 1 ? (QUICK ? 30 : 60) : c * (QUICK ? 2 : 8);
      for (const [who, one] of [
        ["crane", () => craneRun(C, calcDag, 1133)],
        ["crane-queue", () => craneRun(Q, calcDag, 1133)],
        ["workflows", () => workflowRun(P, "calc-dag", 1133)],
      ] as const) {
        const trials = { rps: [] as number[], p50: [] as number[], p95: [] as number[], p99: [] as number[] };
        let peakRss = 0;
        for (let t = 0; t < TRIALS; t++) {
          let sampling = true;
          const sampler = (async () => {
            const pgid = who === "crane" ? crane.pgid : who === "crane-queue" ? craneQueue.pgid : peer.pgid;
            while (sampling && c === 64 && pgid) {
              peakRss = Math.max(peakRss, groupRssMiB(pgid));
              await new Promise((r) => setTimeout(r, 50));
            }
          })();
          const { samples, wallMs } = await load(c, total, one);
          sampling = false;
          await sampler;
          const ms = check(`calc-dag c${c} ${who}`, samples);
          trials.rps.push((ms.length / wallMs) * 1000);
          trials.p50.push(percentile(ms, 50));
          trials.p95.push(percentile(ms, 95));
          trials.p99.push(percentile(ms, 99));
        }
        results[`calc-dag.c${c}.${who}`] = {
          runs_per_s: round(figure(trials.rps)),
          p50_ms: round(figure(trials.p50)),
          p95_ms: round(figure(trials.p95)),
          p99_ms: round(figure(trials.p99)),
          runs_per_trial: total,
          ...(peakRss > 0 ? { peak_rss_mib: Math.round(peakRss) } : {}),
        };
      }
    }

    // 2: sleep-dag, parallel vs max_parallel 1, and the Workflows peer.
    const sleepRuns = QUICK ? 5 : 10;
    for (const [name, one] of [
      ["sleep-dag.crane.parallel", () => craneRun(C, sleepDag(8), 2)],
      ["sleep-dag.crane.sequential", () => craneRun(C, sleepDag(1), 2)],
      ["sleep-dag.workflows", () => workflowRun(P, "sleep-dag", 300)],
    ] as const) {
      const p50s: number[] = [];
      for (let t = 0; t < TRIALS; t++) p50s.push(percentile(check(name, (await load(1, sleepRuns, one)).samples), 50));
      results[name] = { p50_ms: round(figure(p50s)) };
    }

    // 3 + 4: fan-out widths, and a 50-step chain (per-step overhead), for both placements.
    for (const [placement, base] of [
      ["inline", C],
      ["queue", Q],
    ] as const) {
      for (const width of [1, 4, 16, 50]) {
        const p50s: number[] = [];
        const expected = width; // the last step computes (width-1) + 1
        for (let t = 0; t < TRIALS; t++) {
          const { samples } = await load(1, QUICK ? 3 : 10, () => craneRun(base, fanOut(width), expected));
          p50s.push(percentile(check(`fan-out ${width} ${placement}`, samples), 50));
        }
        results[`fan-out.w${width}.${placement}`] = { p50_ms: round(figure(p50s)) };
      }
      const chainP50: number[] = [];
      for (let t = 0; t < TRIALS; t++) {
        const { samples } = await load(1, QUICK ? 2 : 4, () => craneRun(base, chain(50), 50));
        chainP50.push(percentile(check(`chain 50 ${placement}`, samples), 50));
      }
      results[`chain.50.${placement}`] = {
        p50_ms: round(figure(chainP50)),
        per_step_ms: round(figure(chainP50.map((x) => x / 50)), 2),
      };
    }
  } finally {
    crane.kill();
    craneQueue.kill();
    peer.kill();
  }

  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  const med = (key: string, field: string) =>
    ((results[key] as Record<string, Figure> | undefined)?.[field] as Figure | undefined)?.median;
  const ratios: Record<string, number> = {};
  for (const c of [1, 16, 64]) {
    for (const field of ["runs_per_s", "p50_ms", "p99_ms"]) {
      const cr = med(`calc-dag.c${c}.crane`, field);
      const wf = med(`calc-dag.c${c}.workflows`, field);
      if (cr !== undefined && wf !== undefined) ratios[`calc-dag.c${c}.${field}`] = ratio(cr, wf);
      const cq = med(`calc-dag.c${c}.crane-queue`, field);
      if (cq !== undefined && wf !== undefined) ratios[`calc-dag.c${c}.${field}.queue_placement`] = ratio(cq, wf);
    }
  }
  const sp = med("sleep-dag.crane.parallel", "p50_ms");
  const ss = med("sleep-dag.crane.sequential", "p50_ms");
  if (sp !== undefined && ss !== undefined) ratios["sleep-dag.speedup_parallel_vs_sequential"] = ratio(ss, sp);

  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim();
  const wrangler = JSON.parse(readFileSync(path.join(ROOT, "node_modules/wrangler/package.json"), "utf8")).version;
  const report = {
    at: new Date().toISOString(),
    mode: QUICK ? "quick" : "full",
    trials: TRIALS,
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memory_gib: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.platform()} ${os.release()}`,
    },
    node: process.version,
    wrangler,
    commit,
    results,
    ratios_crane_over_workflows: ratios,
    failures,
  };
  mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
  const file = path.join(ROOT, "bench/results", `${report.at.replaceAll(":", "-")}-${report.mode}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(ROOT, "bench/results/latest.json"), `${JSON.stringify(report, null, 2)}\n`);

  const rows = Object.entries(results).map(([name, v]) => {
    const cells = Object.entries(v as Record<string, Figure | number>).map(([k, f]) =>
      typeof f === "number" ? `${k}=${f}` : `${k}=${f.median} [${f.min}–${f.max}]`,
    );
    return `${name.padEnd(30)} ${cells.join("  ")}`;
  });
  console.log(
    `\nCrane benchmark (${report.mode}, median of ${TRIALS} trials [min–max]) — ${report.machine.cpus} × ${report.machine.cpu}, node ${report.node}, wrangler ${wrangler}, ${commit}`,
  );
  console.log(rows.join("\n"));
  console.log("\nCrane / Workflows:", JSON.stringify(ratios));
  console.log(`\nwritten ${path.relative(ROOT, file)}`);
  if (failures.length > 0) {
    console.error(`\nFAILED:\n${failures.join("\n")}`);
    process.exit(1);
  }
}

await main();
