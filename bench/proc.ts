/** What the local benchmarks read about the runtime's processes (Linux `/proc`), and a small worker pool. */
import { readdirSync, readFileSync } from "node:fs";

const TICKS = 100; // clock ticks per second (USER_HZ on Linux)

/** CPU seconds (user + system) and resident MiB of every process in a process group. */
export function group(pgid: number): { cpuS: number; rssMiB: number } {
  let ticks = 0;
  let kib = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== pgid) continue;
      ticks += Number(fields[11]) + Number(fields[12]);
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ESRCH") throw err;
    }
  }
  return { cpuS: ticks / TICKS, rssMiB: kib / 1024 };
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
