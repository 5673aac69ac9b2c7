/** What the local benchmarks read about the runtime's processes (Linux `/proc`), and a small worker pool. */
import { readdirSync, readFileSync } from "node:fs";

const TICKS = 100; // clock ticks per second (USER_HZ on Linux)

/** CPU seconds (user + system) and resident MiB of every process in a process group. */
export function group(pgid: number): { cpuS: number; rssMiB: number } {
  let ticks = 0;
  let kib = 0;
  for (const { pid, fields } of members(pgid)) {
    ticks += Number(fields[11]) + Number(fields[12]);
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch (err) {
      gone(err);
    }
  }
  return { cpuS: ticks / TICKS, rssMiB: kib / 1024 };
}

/**
 * CPU seconds of each thread of the group's workerd processes, by thread id. Locally one workerd
 * thread runs every Worker, object, queue and database, so the time of the busiest one between two
 * readings is what bounds throughput (`busiestThreadS`).
 */
export function workerdThreads(pgid: number): Map<string, number> {
  const threads = new Map<string, number>();
  for (const { pid, comm } of members(pgid)) {
    if (comm !== "workerd") continue;
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const f = statFields(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")).fields;
        threads.set(tid, (Number(f[11]) + Number(f[12])) / TICKS);
      }
    } catch (err) {
      gone(err);
    }
  }
  return threads;
}

/** The most CPU any one thread took between two `workerdThreads` readings. */
export function busiestThreadS(before: Map<string, number>, after: Map<string, number>): number {
  let most = 0;
  for (const [tid, s] of after) most = Math.max(most, s - (before.get(tid) ?? 0));
  return most;
}

/** The fields of a `/proc/…/stat` line after the command name, and the name. */
function statFields(stat: string): { comm: string; fields: string[] } {
  return {
    comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
    fields: stat.slice(stat.lastIndexOf(")") + 2).split(" "),
  };
}

/** A process that ended while it was being read. */
function gone(err: unknown): void {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== "ENOENT" && code !== "ESRCH") throw err;
}

function members(pgid: number): { pid: string; comm: string; fields: string[] }[] {
  const found: { pid: string; comm: string; fields: string[] }[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const { comm, fields } = statFields(readFileSync(`/proc/${pid}/stat`, "utf8"));
      if (Number(fields[2]) === pgid) found.push({ pid, comm, fields });
    } catch (err) {
      gone(err);
    }
  }
  return found;
}

/** Busy and total jiffies of every CPU of the machine (the first line of `/proc/stat`). */
function machineJiffies(): { busy: number; total: number } {
  const f = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/**
 * Waits until the machine is quiet — under `threshold` of its CPUs busy over `windowMs` — or
 * `maxMs` passed, and says how long it waited. Between two engines' trials: work one engine left
 * behind (a gate's archive write a second after its runs, a queue still draining) would otherwise
 * land in the next engine's measurement.
 */
export async function quiet(threshold = 0.12, windowMs = 250, maxMs = 8000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const a = machineJiffies();
    await new Promise((r) => setTimeout(r, windowMs));
    const b = machineJiffies();
    const busy = b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
    const waited = performance.now() - t0;
    if (busy < threshold || waited >= maxMs) return waited;
  }
}

/** Runs `work` over `items`, `n` at a time. */
export async function pool<T>(items: T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}
