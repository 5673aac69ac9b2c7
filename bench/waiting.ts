/**
 * 1,000 runs waiting at once: what a wait costs while nothing happens, and how fast approvals
 * complete them. Starts Crane with `wrangler dev` (limits raised with --var, defaults unchanged),
 * measures the runtime's CPU time (utime + stime of the wrangler and workerd processes, from /proc)
 * over a quiet window with no run, parks N runs on an approval step, measures the same window again
 * (the difference is what waiting costs), then approves every run through the API and checks that
 * each one completed.
 *
 *   node bench/waiting.ts               # 1,000 runs, a 60 s quiet window
 *   node bench/waiting.ts --runs 200 --quiet-s 20
 */

import { writeFileSync } from "node:fs";
import path from "node:path";
import { LocalCrane } from "../scripts/local-wrangler.ts";
import { group, pool } from "./proc.ts";
import { DEV_TOOLING } from "./tooling.ts"; // sets the environment every wrangler dev below starts with

const argv = process.argv.slice(2);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const RUNS = Number(option("--runs") ?? 1000);
const QUIET_S = Number(option("--quiet-s") ?? 60);
const CONCURRENCY = 16;
const ROOT = path.resolve(import.meta.dirname, "..");

const crane = new LocalCrane();
try {
  crane.migrate();
  await crane.start({
    MAX_ACTIVE_RUNS: "100000",
    MAX_WAITING_RUNS: "100000",
    RATE_LIMIT_REQUESTS: "1000000",
    LOG_LEVEL: "warn",
  });
  const pgid = crane.pgid as number;
  const body = {
    prompt: "wait for a person",
    plan: {
      steps: [
        { step_number: 1, tool_name: "approval", tool_input: { message: "go?" } },
        { step_number: 2, tool_name: "calculator", tool_input: { expression: "6 * 7" }, depends_on: [1] },
      ],
    },
  };
  // The same quiet window before any run exists: the local runtime's own background cost.
  await new Promise((r) => setTimeout(r, 3000));
  const idle = group(pgid);
  await new Promise((r) => setTimeout(r, QUIET_S * 1000));
  const idleCpuS = group(pgid).cpuS - idle.cpuS;
  const runs: string[] = [];
  const t0 = performance.now();
  await pool(
    Array.from({ length: RUNS }, (_, i) => i),
    CONCURRENCY,
    async () => {
      const res = await crane.api("/api/v1/runs", { method: "POST", json: body });
      if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
      const run = (await res.json()) as { run_id: string; waiting_for: unknown[] };
      if (run.waiting_for.length !== 1) throw new Error(`run ${run.run_id} is not waiting`);
      runs.push(run.run_id);
    },
  );
  const createS = (performance.now() - t0) / 1000;
  const inbox = (await (await crane.api("/api/v1/approvals?limit=100")).json()) as unknown[];

  // The quiet window: every run waits; nothing should burn CPU.
  await new Promise((r) => setTimeout(r, 3000)); // let the archive queue and outboxes settle
  const before = group(pgid);
  await new Promise((r) => setTimeout(r, QUIET_S * 1000));
  const after = group(pgid);
  const quietCpuS = after.cpuS - before.cpuS;

  const t1 = performance.now();
  await pool(runs, CONCURRENCY, async (id) => {
    const res = await crane.api(`/api/v1/runs/${id}/steps/1/approve`, { method: "POST" });
    if (res.status !== 200) throw new Error(`approve ${id}: ${res.status} ${await res.text()}`);
    const run = (await res.json()) as { status: string; result: unknown };
    if (run.status !== "completed" || run.result !== 42) throw new Error(`run ${id} did not complete: ${run.status}`);
  });
  const approveS = (performance.now() - t1) / 1000;
  const end = group(pgid);

  const result = {
    at: new Date().toISOString(),
    dev_tooling: DEV_TOOLING,
    command: `node bench/waiting.ts --runs ${RUNS} --quiet-s ${QUIET_S}`,
    runs: RUNS,
    created_per_s: Number((RUNS / createS).toFixed(1)),
    inbox_first_page: inbox.length,
    quiet_window_s: QUIET_S,
    idle_cpu_s: Number(idleCpuS.toFixed(2)),
    quiet_cpu_s: Number(quietCpuS.toFixed(2)),
    quiet_cpu_share_of_one_core: Number((quietCpuS / QUIET_S).toFixed(4)),
    /** What the waiting runs add to the runtime's own background CPU over the window. */
    waiting_cpu_s: Number((quietCpuS - idleCpuS).toFixed(2)),
    rss_idle_mib: Math.round(idle.rssMiB),
    rss_waiting_mib: Math.round(after.rssMiB),
    rss_after_mib: Math.round(end.rssMiB),
    approvals_per_s: Number((RUNS / approveS).toFixed(1)),
    all_completed: true,
  };
  console.log(JSON.stringify(result, null, 2));
  writeFileSync(
    path.join(ROOT, "bench/results", `${result.at.replaceAll(":", "-")}-waiting.json`),
    `${JSON.stringify(result, null, 2)}\n`,
  );
} finally {
  crane.dispose();
}
