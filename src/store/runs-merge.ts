import type { RunSummary } from "../contracts/history";

/** Newest first: by created_at, then run_id (both descending), as every listing orders. */
export const newerFirst = (a: RunSummary, b: RunSummary): number =>
  a.created_at === b.created_at
    ? a.run_id < b.run_id
      ? 1
      : a.run_id > b.run_id
        ? -1
        : 0
    : a.created_at < b.created_at
      ? 1
      : -1;

/** Where the D1 side of an offset page starts: past the gate's rows, at most `gateTotal` of which can precede it. */
export const d1Offset = (offset: number, gateTotal: number): number => Math.max(0, offset - gateTotal);

/**
 * One page of a listing made of two sources: D1 (archived runs) and the tenant's gate (runs in
 * flight, waiting, or finished but not archived yet). The gate holds few rows and they are (all
 * but briefly) not in D1, so the union is exact:
 *  - `gate`: the gate's first `offset + limit + 1` matching rows, newest first;
 *  - `d1`: D1's matching rows from `d1Offset(offset, gateTotal)`, at least `offset - d1Offset + limit + 1` of them;
 *  - a run in both (just archived) counts once, with the view that has finished.
 * Gate rows newer than D1's first row when D1 starts past 0 lie before `offset` and are dropped.
 */
export function mergePage(
  d1: readonly RunSummary[],
  gate: readonly RunSummary[],
  opts: { offset: number; limit: number; gateTotal: number },
): { runs: RunSummary[]; more: boolean } {
  const start = d1Offset(opts.offset, opts.gateTotal);
  if (start > 0 && d1.length === 0) return { runs: [], more: false };
  const boundary = start > 0 ? d1[0] : undefined;
  const kept = boundary ? gate.filter((g) => newerFirst(g, boundary) > 0) : gate;
  const dropped = gate.length - kept.length;
  const byId = new Map<string, RunSummary>();
  for (const r of [...d1, ...kept]) {
    const seen = byId.get(r.run_id);
    if (!seen || (seen.completed_at === null && r.completed_at !== null)) byId.set(r.run_id, r);
  }
  const merged = [...byId.values()].sort(newerFirst);
  const base = start > 0 ? start + dropped : 0;
  const from = opts.offset - base;
  return { runs: merged.slice(from, from + opts.limit), more: merged.length > from + opts.limit };
}
