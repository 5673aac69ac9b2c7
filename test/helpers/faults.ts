import { env } from "cloudflare:workers";
import type { RunEvent } from "../../src/contracts/run";
import type { StepMessage } from "../../src/contracts/tool";

/** Mulberry32: a small seeded PRNG, so that a failing fault schedule can be replayed from its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const messageKey = (m: StepMessage) => `${m.run_id}:${m.step_number}:${m.attempt}`;

const TERMINAL_STEP = new Set(["step.succeeded", "step.failed", "step.skipped", "step.cancelled"]);

/** Each step's terminal events: exactly one per step means every outcome was recorded once. */
export function terminalEventsPerStep(events: RunEvent[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const e of events) {
    if (e.step_number !== undefined && TERMINAL_STEP.has(e.type)) {
      out.set(e.step_number, [...(out.get(e.step_number) ?? []), e.type]);
    }
  }
  return out;
}

/** How many todos with this exact text exist, read straight from D1. */
export async function todoCount(text: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM todos WHERE text = ?").bind(text).first<{ n: number }>();
  return row?.n ?? 0;
}
