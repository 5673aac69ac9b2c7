/**
 * The cost of a run: the billable operations each benchmark plan causes on Cloudflare, counted
 * inside Crane (`BENCH_COUNTERS=true`, read through `GET /api/v1/admin/counters`), per run, and
 * priced per million runs from Cloudflare's published prices.
 *
 * A plan's figure covers the whole life of its runs: the POST, the steps (inline or through the
 * queue), waits and the request that ends them, the archive to D1 and the purge of the object's
 * storage after retention (the instance runs with a short `RUN_RETENTION_MS` so that the purge
 * falls inside the window). Counters are read once everything has settled: no counter moves for
 * two consecutive reads beyond what a read itself adds (measured first and subtracted).
 */

type Json = unknown;

/** USD per million, Workers Paid. Read 2026-11-26 from the pages named in `PRICES_SOURCE`. */
export const PRICES = {
  worker_invocations: 0.3,
  do_requests: 0.15,
  do_rows_read: 0.001,
  do_rows_written: 1.0,
  d1_rows_read: 0.001,
  d1_rows_written: 1.0,
  queue_operations: 0.4,
} as const;

export const PRICES_SOURCE = [
  "https://developers.cloudflare.com/workers/platform/pricing/ (requests $0.30/M)",
  "https://developers.cloudflare.com/durable-objects/platform/pricing/ (requests $0.15/M; SQLite rows read $0.001/M, rows written $1.00/M)",
  "https://developers.cloudflare.com/d1/platform/pricing/ (rows read $0.001/M, rows written $1.00/M)",
  "https://developers.cloudflare.com/queues/platform/pricing/ ($0.40/M operations; write, read and delete of a message ≤ 64 KB are one each)",
  "read 2026-11-26; not priced: CPU time ($0.02/M ms), Durable Object duration ($12.50/M GB-s), storage, free allowances",
];

type Counters = Record<string, number>;
type PerRun = Record<keyof typeof PRICES, number>;
export interface CostRow {
  plan: string;
  placement: "inline" | "queue";
  runs: number;
  per_run: PerRun;
  usd_per_million_runs: number;
}

const KEY = "crane-dev-key";
const ADMIN = "crane-dev-admin";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function counters(base: string, reset = false): Promise<Counters> {
  const res = await fetch(`${base}/api/v1/admin/counters${reset ? "?reset=1" : ""}`, {
    headers: { Authorization: `Bearer ${ADMIN}` },
  });
  if (res.status !== 200) throw new Error(`counters answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Counters;
}

async function api(base: string, method: string, pathname: string, body?: Json): Promise<Json> {
  const res = await fetch(`${base}/api/v1${pathname}`, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as Json;
  if (res.status >= 300) throw new Error(`${method} ${pathname} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

interface Plan {
  name: string;
  body: (i: number) => Json;
  /** What a person (or a webhook) does to the run after its POST, if anything. */
  afterPost?: (base: string, runId: string) => Promise<void>;
}

const steps = (list: { tool_name: string; tool_input: Json; depends_on?: number[] }[]) =>
  list.map((s, i) => ({ step_number: i + 1, ...s }));

/** The plans priced: the benchmark's shapes, a timer, a person's approval. */
export const COST_PLANS: Plan[] = [
  {
    name: "calc-dag (3 steps + join)",
    body: () => ({
      prompt: "cost calc-dag",
      plan: {
        steps: steps([
          { tool_name: "calculator", tool_input: { expression: "12*7" } },
          { tool_name: "calculator", tool_input: { expression: "100/4" } },
          { tool_name: "calculator", tool_input: { expression: "2^10" } },
          {
            tool_name: "calculator",
            tool_input: { expression: "{{steps.1.output}} + {{steps.2.output}} + {{steps.3.output}}" },
          },
        ]),
      },
    }),
  },
  {
    name: "chain of 10",
    body: () => ({
      prompt: "cost chain",
      plan: {
        steps: steps(
          Array.from({ length: 10 }, (_, i) => ({
            tool_name: "calculator",
            tool_input: { expression: i === 0 ? "1" : `{{steps.${i}.output}} + 1` },
          })),
        ),
      },
    }),
  },
  {
    name: "sleep-dag (3 × 100 ms sleep + join)",
    body: () => ({
      prompt: "cost sleep-dag",
      plan: {
        steps: steps([
          ...[1, 2, 3].map(() => ({ tool_name: "sleep", tool_input: { ms: 100 } })),
          { tool_name: "calculator", tool_input: { expression: "1 + 1" }, depends_on: [1, 2, 3] },
        ]),
      },
    }),
  },
  {
    name: "todo add (D1 write)",
    body: (i) => ({
      prompt: "cost todo",
      plan: {
        steps: steps([{ tool_name: "todo_store", tool_input: { action: "add", text: `cost-${Date.now()}-${i}` } }]),
      },
    }),
  },
  {
    name: "wait 1 s (durable timer)",
    body: () => ({ prompt: "cost wait", plan: { steps: steps([{ tool_name: "wait", tool_input: { ms: 1000 } }]) } }),
  },
  {
    name: "approval + approve",
    body: () => ({
      prompt: "cost approval",
      plan: { steps: steps([{ tool_name: "approval", tool_input: { message: "ship it?" } }]) },
    }),
    afterPost: async (base, runId) => {
      // The POST answers once the step waits; a 409 (not waiting yet) would be tried again.
      for (let i = 0; ; i++) {
        try {
          await api(base, "POST", `/runs/${runId}/steps/1/approve`, { comment: "yes" });
          return;
        } catch (err) {
          if (i >= 50 || !String(err).includes("answered 409")) throw err;
          await sleep(50);
        }
      }
    },
  },
];

const diff = (a: Counters, b: Counters): Counters =>
  Object.fromEntries(Object.keys({ ...a, ...b }).map((k) => [k, (a[k] ?? 0) - (b[k] ?? 0)]));
const scale = (a: Counters, k: number): Counters => Object.fromEntries(Object.entries(a).map(([n, v]) => [n, v * k]));

/**
 * What one counters read adds to the counters (its own Worker invocation, at least), on an idle
 * instance: the same difference between three reads in a row.
 */
async function readOverhead(base: string): Promise<Counters> {
  for (let i = 0; i < 30; i++) {
    const a = await counters(base);
    const b = await counters(base);
    const c = await counters(base);
    const one = diff(b, a);
    if (JSON.stringify(one) === JSON.stringify(diff(c, b))) return one;
    await sleep(1000);
  }
  throw new Error("the instance never went idle");
}

/**
 * Waits until nothing moves between two reads (beyond the reads themselves), at least `minMs`
 * after the last run settled, and returns the counters less what the reads added.
 */
async function settled(base: string, overhead: Counters, minMs: number): Promise<Counters> {
  await sleep(minMs);
  let reads = 0;
  let last = await counters(base);
  reads++;
  for (let i = 0; i < 60; i++) {
    await sleep(1000);
    const now = await counters(base);
    reads++;
    const moved = Object.entries(diff(diff(now, last), overhead)).some(([, v]) => Math.abs(v) > 0);
    last = now;
    if (!moved) return diff(last, scale(overhead, reads));
  }
  throw new Error("counters never settled (something keeps working after the runs finished)");
}

function priced(total: Counters, runs: number): { per_run: PerRun; usd: number } {
  const per = (k: string) => (total[k] ?? 0) / runs;
  const per_run: PerRun = {
    worker_invocations: per("worker_invocations"),
    do_requests: per("do_requests"),
    do_rows_read: per("do_rows_read"),
    do_rows_written: per("do_rows_written"),
    d1_rows_read: per("d1_rows_read"),
    d1_rows_written: per("d1_rows_written"),
    queue_operations: per("queue_messages_written") + per("queue_messages_read") + per("queue_messages_deleted"),
  };
  const usd = (Object.keys(PRICES) as (keyof typeof PRICES)[]).reduce((s, k) => s + per_run[k] * PRICES[k], 0);
  const round = (x: number) => Number(x.toFixed(2));
  return {
    per_run: Object.fromEntries(Object.entries(per_run).map(([k, v]) => [k, round(v)])) as PerRun,
    usd: round(usd),
  };
}

async function submitAll(base: string, plan: Plan, runs: number, concurrency = 4): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < runs) {
        const i = next++;
        const run = (await api(base, "POST", "/runs", plan.body(i))) as { run_id: string };
        ids.push(run.run_id);
        if (plan.afterPost) await plan.afterPost(base, run.run_id);
      }
    }),
  );
  return ids;
}

/** Every run completed (read after the counters, so the checking costs nothing in the table). */
async function allCompleted(base: string, ids: string[]): Promise<string | null> {
  for (const id of ids) {
    const run = (await api(base, "GET", `/runs/${id}`)) as { status: string };
    if (run.status !== "completed") return `run ${id} is ${run.status}`;
  }
  return null;
}

/**
 * Prices every plan on one Crane instance started with `BENCH_COUNTERS=true` and a short
 * `RUN_RETENTION_MS` (`retentionMs`). `placement` names how that instance runs pure steps.
 */
export async function measureCost(
  base: string,
  placement: "inline" | "queue",
  runs: number,
  retentionMs: number,
  plans: Plan[] = COST_PLANS,
): Promise<{ rows: CostRow[]; failures: string[] }> {
  const rows: CostRow[] = [];
  const failures: string[] = [];
  const overhead = await readOverhead(base);
  for (const plan of plans) {
    // Warm up (the tenant's gate tables, the breakers, the modules exist before counting) and
    // let the warm-up runs settle.
    await submitAll(base, plan, 2, 1);
    await settled(base, overhead, retentionMs + 7_000);
    await counters(base, true);
    const ids = await submitAll(base, plan, runs);
    // Past retention, the outbox grace and the purge's own alarm.
    const total = await settled(base, overhead, retentionMs + 7_000);
    const bad = await allCompleted(base, ids);
    if (bad) failures.push(`cost ${plan.name} (${placement}): ${bad}`);
    const { per_run, usd } = priced(total, runs);
    rows.push({ plan: plan.name, placement, runs, per_run, usd_per_million_runs: usd });
  }
  return { rows, failures };
}

/** The table, as printed by `npm run bench` and pasted into the README. */
export function costTable(rows: CostRow[]): string {
  const head =
    "| plan | placement | Worker invocations | DO requests | DO rows written | D1 rows read | D1 rows written | queue ops | USD per 1M runs |";
  const rule = "|---|---|--:|--:|--:|--:|--:|--:|--:|";
  const lines = rows.map((r) =>
    [
      r.plan,
      r.placement,
      r.per_run.worker_invocations,
      r.per_run.do_requests,
      r.per_run.do_rows_written,
      r.per_run.d1_rows_read,
      r.per_run.d1_rows_written,
      r.per_run.queue_operations,
      `$${r.usd_per_million_runs.toFixed(2)}`,
    ].join(" | "),
  );
  return [head, rule, ...lines.map((l) => `| ${l} |`)].join("\n");
}
