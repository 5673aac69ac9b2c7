import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { Run, RunEvent } from "../../src/contracts/run";
import type { StepMessage } from "../../src/contracts/tool";
import type { FaultInjector, MessageFault } from "../../src/faults";
import type { RunCoordinator } from "../../src/run/coordinator";
import { api, getRun } from "./api";

/** A queue message's identity including its task: a step's attempt 1 and its compensation's attempt 1 differ. */
export const taskKey = (m: StepMessage) => `${m.run_id}:${m.step_number}:${m.attempt}:${m.task ?? "step"}`;

export const isCompensation = (m: StepMessage) => m.task === "compensate";

/** Injects `fault` into the first delivery of each matching message (per task and attempt), once. */
export function firstDelivery(match: (m: StepMessage) => boolean, fault: MessageFault): FaultInjector {
  const seen = new Set<string>();
  return {
    onMessage(m) {
      if (!match(m) || seen.has(taskKey(m))) return undefined;
      seen.add(taskKey(m));
      return fault;
    },
  };
}

/** A promise to hold a consumer's report with (`holdReport`) until `release()`: no race with the clock. */
export function held(): { until: Promise<void>; release: () => void } {
  let release = () => {};
  const until = new Promise<void>((r) => {
    release = r;
  });
  return { until, release };
}

/** Polls `fn` until `check` passes; fails after `timeoutMs` naming what it waited for. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T>,
  check: (v: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 600)}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

export const coordinator = (tenant: string, runId: string) => env.RUNS.get(env.RUNS.idFromName(`${tenant}:${runId}`));

/** Waits until the run's coordinator deleted its storage (RUN_RETENTION_MS after it was archived). */
export async function purged(runId: string, tenant = "dev", timeoutMs = 20_000): Promise<void> {
  await eventually(
    `run ${runId} to leave its Durable Object`,
    () => runInDurableObject(coordinator(tenant, runId), (instance: RunCoordinator) => instance.get()),
    (run) => run === null,
    timeoutMs,
  );
}

/** `type#step` of the events whose type starts with `prefix`, in log order. */
export const eventsLike = (events: RunEvent[], prefix: string) =>
  events.filter((e) => e.type.startsWith(prefix)).map((e) => `${e.type}#${e.step_number ?? ""}`);

/** How often each step's compensation reached each terminal outcome. */
export function compensationOutcomes(events: RunEvent[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const e of events) {
    if (
      e.step_number !== undefined &&
      (e.type === "compensation.step_succeeded" || e.type === "compensation.step_failed")
    ) {
      out.set(e.step_number, [...(out.get(e.step_number) ?? []), e.type]);
    }
  }
  return out;
}

const FINISHED = new Set(["completed", "failed", "cancelled"]);

/** Polls until the run is finished; on timeout the error names the run's last events, to show where it stopped. */
export async function waitForEnd(runId: string, timeoutMs = 15_000, key?: string): Promise<Run> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await getRun(runId, key);
    if (FINISHED.has(run.status)) return run;
    if (Date.now() > deadline) {
      const res = await api(`/api/v1/runs/${runId}/events`, key ? { key } : {});
      const last = ((await res.json()) as RunEvent[])
        .slice(-4)
        .map((e) => `${e.type}#${e.step_number ?? ""}.${e.attempt ?? ""}`);
      throw new Error(`run ${runId} still ${run.status} after ${timeoutMs} ms; its last events: ${last.join(", ")}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
