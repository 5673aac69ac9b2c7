// Pure helpers of the run page: a live event applied to the Run on screen, the DAG's edges by
// kind, and the attempts timeline.
import type { Json } from "../../src/contracts/common";
import type { PlanStep } from "../../src/contracts/plan";
import type { ExecutionLogEntry, Run, RunEvent, StepStatus } from "../../src/contracts/run";
import type { ToolDescriptor } from "../../src/contracts/tool";
import type { WaitingInfo } from "../../src/contracts/waiting";
import { findReferences } from "../../src/plan/references";

const STEP_STATUS: Partial<Record<RunEvent["type"], StepStatus>> = {
  "step.dispatched": "pending",
  "step.started": "running",
  "step.retry_scheduled": "running",
  "step.waiting": "waiting",
  "step.reused": "succeeded",
  "step.succeeded": "succeeded",
  "step.failed": "failed",
  "step.skipped": "skipped",
  "step.cancelled": "cancelled",
};

/**
 * The run on screen after one live event: enough to light the graph up at once. The page also
 * re-reads the run (debounced) after events, so the server's own fold stays the truth.
 */
export function applyEvent(run: Run, event: RunEvent): Run {
  const d = (event.data ?? {}) as Record<string, Json>;
  switch (event.type) {
    case "run.completed":
      return { ...run, status: "completed", result: d.result ?? null, completed_at: event.at, waiting_for: [] };
    case "run.failed":
      return { ...run, status: "failed", error: str(d.error) ?? "Run failed", completed_at: event.at, waiting_for: [] };
    case "run.cancelled":
      return { ...run, status: "cancelled", error: str(d.error) ?? run.error, completed_at: event.at, waiting_for: [] };
    default:
      break;
  }
  const status = STEP_STATUS[event.type];
  if (status === undefined || event.step_number === undefined) return run;
  const n = event.step_number;
  const execution_log = run.execution_log.map((e): ExecutionLogEntry => {
    if (e.step_number !== n) return e;
    const next: ExecutionLogEntry = { ...e, status };
    if (event.attempt !== undefined) next.attempts = event.attempt;
    if (event.type === "step.started") {
      next.started_at ??= event.at;
      if (d.input && typeof d.input === "object" && !Array.isArray(d.input)) next.tool_input = d.input;
    }
    if (event.type === "step.succeeded" || event.type === "step.reused") {
      next.output = d.output ?? null;
      next.success = true;
      next.error = null;
    }
    if (event.type === "step.failed") {
      next.success = false;
      next.error = str(d.error) ?? "Step failed";
    }
    if (status === "waiting") next.waiting = d as unknown as WaitingInfo;
    else delete next.waiting;
    if (["succeeded", "failed", "skipped", "cancelled"].includes(status)) {
      next.completed_at = event.at;
      if (next.started_at) next.duration_ms = Date.parse(event.at) - Date.parse(next.started_at);
    }
    return next;
  });
  const waiting_for =
    status === "waiting"
      ? [...run.waiting_for.filter((w) => w.step_number !== n), { ...(d as unknown as WaitingInfo), step_number: n }]
      : run.waiting_for.filter((w) => w.step_number !== n);
  return { ...run, status: run.status === "pending" ? "running" : run.status, execution_log, waiting_for };
}

const str = (v: Json | undefined): string | null => (typeof v === "string" ? v : null);

export type EdgeKind = "reference" | "resource" | "dependency";
export interface PlanEdge {
  from: number;
  to: number;
  kind: EdgeKind;
}

/**
 * The plan's edges. A validated plan's `depends_on` holds every dependency the run enforces;
 * each is shown as a reference when the step's input names the other step's output, as resource
 * ordering when both tools touch one resource (e.g. todo_store), and as a dependency otherwise.
 */
export function planEdges(steps: readonly PlanStep[], tools: readonly ToolDescriptor[] | undefined): PlanEdge[] {
  const resource = new Map((tools ?? []).map((t) => [t.name, t.effects.mode === "none" ? null : t.effects.resource]));
  const toolOf = new Map(steps.map((s) => [s.step_number, s.tool_name]));
  const edges: PlanEdge[] = [];
  for (const step of steps) {
    const refs = new Set(findReferences(step.tool_input).map((r) => r.step));
    for (const dep of step.depends_on) {
      const a = resource.get(step.tool_name);
      const b = resource.get(toolOf.get(dep) ?? "");
      const kind: EdgeKind = refs.has(dep) ? "reference" : a && a === b ? "resource" : "dependency";
      edges.push({ from: dep, to: step.step_number, kind });
    }
  }
  return edges;
}

export type SegmentKind = "blocked" | "queued" | "running" | "backoff" | "waiting";
export interface Segment {
  kind: SegmentKind;
  start: number;
  end: number;
  attempt?: number;
  open: boolean;
}

const ENDS_RUNNING = new Set(["step.succeeded", "step.failed", "step.retry_scheduled", "step.cancelled"]);

/**
 * When each step waited for its dependencies (blocked), sat in the queue, ran, backed off
 * before a retry or waited for a timer, approval or signal — from the event log. Open segments
 * end at `now`.
 */
export function timeline(
  events: readonly RunEvent[],
  now: number,
): { start: number; end: number; rows: Map<number, Segment[]> } {
  const rows = new Map<number, Segment[]>();
  const open = new Map<number, Segment>();
  const at = (e: RunEvent) => Date.parse(e.at);
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  let planned: number | null = null;
  let finished: number | null = null;
  const close = (n: number, t: number) => {
    const seg = open.get(n);
    if (seg) {
      seg.end = t;
      seg.open = false;
      open.delete(n);
    }
  };
  const begin = (n: number, seg: Omit<Segment, "end" | "open">) => {
    const s: Segment = { ...seg, end: seg.start, open: true };
    rows.set(n, [...(rows.get(n) ?? []), s]);
    open.set(n, s);
  };
  for (const e of events) {
    const t = at(e);
    start = Math.min(start, t);
    end = Math.max(end, t);
    if (e.type === "run.planned") planned = t;
    if (e.type === "run.completed" || e.type === "run.failed" || e.type === "run.cancelled") finished = t;
    const n = e.step_number;
    if (n === undefined || !e.type.startsWith("step.")) continue;
    if (!rows.has(n) && planned !== null && e.type === "step.dispatched" && t > planned) {
      rows.set(n, [{ kind: "blocked", start: planned, end: t, open: false }]);
    }
    if (e.type === "step.dispatched") {
      close(n, t);
      begin(n, { kind: "queued", start: t, attempt: e.attempt });
    } else if (e.type === "step.started") {
      close(n, t);
      begin(n, { kind: "running", start: t, attempt: e.attempt });
    } else if (e.type === "step.waiting") {
      close(n, t);
      begin(n, { kind: "waiting", start: t, attempt: e.attempt });
    } else if (ENDS_RUNNING.has(e.type) || e.type === "step.skipped" || e.type === "step.reused") {
      close(n, t);
      if (e.type === "step.retry_scheduled") begin(n, { kind: "backoff", start: t, attempt: e.attempt });
    }
  }
  const stop = finished ?? Math.max(now, end);
  for (const [n] of open) {
    const seg = open.get(n);
    if (seg) seg.end = finished ?? stop;
    if (finished !== null && seg) seg.open = false;
  }
  if (!Number.isFinite(start)) start = now;
  return { start, end: Math.max(stop, start + 1), rows };
}
