import { formatDuration } from "../../src/client/duration";

/** "3.2 s", "450 ms", "2 min 5 s", "1 h 4 min". */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  return formatDuration(ms);
}

/** "12 s ago", "3 min ago", … from an ISO timestamp. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "—";
  const ms = Math.max(0, now - Date.parse(iso));
  if (ms < 5000) return "just now";
  if (ms < 60_000) return `${Math.round(ms / 1000)} s ago`;
  return `${duration(ms).replace(/ \d+ (s|min|h)$/, "")} ago`;
}

export function time(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function json(value: unknown): string {
  return value === undefined ? "—" : JSON.stringify(value, null, 2);
}

export const FINISHED: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);

export function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(rate === 1 ? 0 : 1)} %`;
}
