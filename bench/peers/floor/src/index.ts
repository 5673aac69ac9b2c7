import { DurableObject } from "cloudflare:workers";

/**
 * The benchmark floor: the least a durable run can do on this platform, so that Crane can be
 * reported as a ratio to it. One new Durable Object per run (SQLite storage); each commit's
 * events in one `transactionSync`. Nothing else: no validation, auth, planning, archive, outbox,
 * watchdog alarm, retries or quotas — what Crane spends beyond this is its overhead.
 *
 * - inline (`POST /run?placement=inline`): the object computes every step and writes the run's
 *   events (created, one per step, completed) in one transaction, then answers with the result.
 * - queue (`POST /run?placement=queue`): the object records the run, sends the ready steps with
 *   one `sendBatch` and answers with the run id; the queue consumer computes each step and
 *   reports by RPC; the object records each result (one transaction per report), computes a
 *   join itself once its inputs are in, sends whatever became ready, and tells watchers on
 *   `GET /run/<id>/live` (a hibernatable WebSocket — the way Crane's driver follows a Crane run,
 *   so both pay for the same client round trips) when the run completed.
 *
 * Shapes (the same as Crane's benchmark plans): calc-dag (three calculations, then their sum),
 * sleep-dag (three sleeps, then a join), fan-out (n independent steps), chain (n steps, each
 * the previous output + 1), and for the scale scenario sleep (one sleep) and todo (one row
 * written to D1 once per idempotency key, `GET /todos?prefix=` counts them).
 */
interface Env {
  RUNS: DurableObjectNamespace<FloorRun>;
  STEPS: Queue<StepMessage>;
  /** The scale scenario's todo writes: one row per idempotency key. */
  DB: D1Database;
}

type Scenario = "calc-dag" | "sleep-dag" | "fan-out" | "chain" | "sleep" | "todo";
const SCENARIOS: readonly string[] = ["calc-dag", "sleep-dag", "fan-out", "chain", "sleep", "todo"];
type Placement = "inline" | "queue";
interface Spec {
  scenario: Scenario;
  /** fan-out width, chain length */
  n: number;
  /** sleep-dag, sleep: each sleep */
  sleepMs: number;
  /** todo: its text */
  text: string;
}

type Op = "mul" | "div" | "pow" | "add" | "sum" | "sleep" | "todo";
type PureOp = Exclude<Op, "sleep" | "todo">;
/** A number, or the output of an earlier step. */
type Arg = number | { step: number };
interface Step {
  op: Op;
  args: Arg[];
  /** A join: computed by the object once its inputs are in, also under queue placement. */
  join?: true;
}
interface StepMessage {
  run_id: string;
  step: number;
  op: Op;
  args: number[];
  text?: string;
}

/** The shapes Crane's benchmark runs, step for step (steps are numbered from 1, in order). */
function planOf(spec: Spec): Step[] {
  switch (spec.scenario) {
    case "calc-dag":
      return [
        { op: "mul", args: [12, 7] },
        { op: "div", args: [100, 4] },
        { op: "pow", args: [2, 10] },
        { op: "sum", args: [{ step: 1 }, { step: 2 }, { step: 3 }], join: true },
      ];
    case "sleep-dag":
      return [
        { op: "sleep", args: [spec.sleepMs] },
        { op: "sleep", args: [spec.sleepMs] },
        { op: "sleep", args: [spec.sleepMs] },
        { op: "sum", args: [{ step: 1 }, { step: 2 }, { step: 3 }], join: true },
      ];
    case "fan-out":
      return Array.from({ length: spec.n }, (_, i) => ({ op: "add" as const, args: [i, 1] }));
    case "chain":
      return Array.from({ length: spec.n }, (_, i) => ({
        op: "add" as const,
        args: i === 0 ? [0, 1] : [{ step: i }, 1],
      }));
    case "sleep":
      return [{ op: "sleep", args: [spec.sleepMs] }];
    case "todo":
      return [{ op: "todo", args: [] }];
  }
}

/** A pure step's output. */
function calc(op: PureOp, args: number[]): number {
  const [a = 0, b = 0] = args;
  switch (op) {
    case "mul":
      return a * b;
    case "div":
      return a / b;
    case "pow":
      return a ** b;
    case "add":
      return a + b;
    case "sum":
      return args.reduce((x, y) => x + y, 0);
  }
}

let todosTable: Promise<unknown> | null = null;
const todos = (env: Env) => {
  todosTable ??= env.DB.exec("CREATE TABLE IF NOT EXISTS todos (id TEXT PRIMARY KEY, text TEXT NOT NULL)");
  return todosTable;
};

/** What the queue consumer runs: a pure step, a sleep, or a todo written to D1 once per key. */
async function compute(m: StepMessage, env: Env): Promise<number> {
  if (m.op === "sleep") {
    const ms = m.args[0] ?? 0;
    await new Promise((r) => setTimeout(r, ms));
    return ms;
  }
  if (m.op === "todo") {
    await todos(env);
    // The idempotency key is the primary key: a redelivered step writes nothing new.
    await env.DB.prepare("INSERT INTO todos (id, text) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
      .bind(`${m.run_id}:${m.step}`, m.text ?? "")
      .run();
    return 1;
  }
  return calc(m.op, m.args);
}

interface EventRow extends Record<string, SqlStorageValue> {
  type: string;
  step: number | null;
  data: string | null;
}

export class FloorRun extends DurableObject<Env> {
  private spec: Spec | null = null;
  private placement: Placement = "inline";
  private plan: Step[] = [];
  private readonly outputs = new Map<number, number>();
  private readonly sent = new Set<number>();
  private result: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, step INTEGER, data TEXT)",
    );
    // Rebuild after an eviction (a new object has no rows).
    for (const row of ctx.storage.sql.exec<EventRow>("SELECT type, step, data FROM events ORDER BY seq")) {
      if (row.type === "run.created") {
        const created = JSON.parse(row.data as string) as { spec: Spec; placement: Placement };
        this.spec = created.spec;
        this.placement = created.placement;
        this.plan = planOf(created.spec);
      } else if (row.type === "step.succeeded") this.outputs.set(row.step as number, Number(row.data));
      else if (row.type === "run.completed") this.result = Number(row.data);
    }
    for (const n of this.readyQueued()) this.sent.add(n);
  }

  /** Inline placement: every step computed here, all events in one transaction. */
  async runInline(spec: Spec): Promise<number> {
    this.created(spec, "inline");
    const rows: [string, number | null, string | null][] = [["run.created", null, this.createdData()]];
    for (let n = 1; n <= this.plan.length; n++) {
      const step = this.plan[n - 1] as Step;
      const out = calc(step.op as PureOp, this.resolve(step));
      this.outputs.set(n, out);
      rows.push(["step.succeeded", n, String(out)]);
    }
    this.result = this.outputs.get(this.plan.length) as number;
    rows.push(["run.completed", null, String(this.result)]);
    this.write(rows);
    return this.result;
  }

  /** Queue placement: records the run, sends its ready steps in one sendBatch, answers. */
  async start(runId: string, spec: Spec): Promise<void> {
    this.created(spec, "queue");
    this.write([["run.created", null, this.createdData()]]);
    await this.send(runId, this.readyQueued());
  }

  /** The consumer reports a step's output. A duplicate report changes nothing. */
  async report(runId: string, n: number, output: number): Promise<void> {
    if (this.result !== null || this.outputs.has(n)) return;
    this.outputs.set(n, output);
    const rows: [string, number | null, string | null][] = [["step.succeeded", n, String(output)]];
    // Joins whose inputs are all in are computed here, in the same commit.
    for (let again = true; again; ) {
      again = false;
      for (let j = 1; j <= this.plan.length; j++) {
        const step = this.plan[j - 1] as Step;
        if (!step.join || this.outputs.has(j) || !this.depsDone(step)) continue;
        const out = calc(step.op as PureOp, this.resolve(step));
        this.outputs.set(j, out);
        rows.push(["step.succeeded", j, String(out)]);
        again = true;
      }
    }
    if (this.outputs.size === this.plan.length) {
      this.result = this.outputs.get(this.plan.length) as number;
      rows.push(["run.completed", null, String(this.result)]);
    }
    this.write(rows);
    if (this.result !== null) {
      for (const ws of this.ctx.getWebSockets()) this.finish(ws);
      return;
    }
    await this.send(runId, this.readyQueued());
  }

  /** `GET /run/<id>/live`: a hibernatable WebSocket that gets one message when the run completes. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("upgrade", { status: 426 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    if (this.result !== null) this.finish(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  private finish(ws: WebSocket): void {
    try {
      ws.send(JSON.stringify({ type: "completed", result: this.result }));
      ws.close(1000, "run finished");
    } catch {
      // The watcher went away; nobody to tell.
    }
  }

  private created(spec: Spec, placement: Placement): void {
    this.spec = spec;
    this.placement = placement;
    this.plan = planOf(spec);
  }

  private createdData(): string {
    return JSON.stringify({ spec: this.spec, placement: this.placement });
  }

  private write(rows: [string, number | null, string | null][]): void {
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      for (const [type, step, data] of rows)
        sql.exec("INSERT INTO events (type, step, data) VALUES (?, ?, ?)", type, step, data);
    });
  }

  private depsDone(step: Step): boolean {
    return step.args.every((a) => typeof a === "number" || this.outputs.has(a.step));
  }

  private resolve(step: Step): number[] {
    return step.args.map((a) => (typeof a === "number" ? a : (this.outputs.get(a.step) as number)));
  }

  /** Steps that go through the queue, are ready, and were not sent yet. */
  private readyQueued(): number[] {
    if (this.placement !== "queue" || this.result !== null) return [];
    const ready: number[] = [];
    for (let n = 1; n <= this.plan.length; n++) {
      const step = this.plan[n - 1] as Step;
      if (!step.join && !this.outputs.has(n) && !this.sent.has(n) && this.depsDone(step)) ready.push(n);
    }
    return ready;
  }

  private async send(runId: string, steps: number[]): Promise<void> {
    if (steps.length === 0) return;
    for (const n of steps) this.sent.add(n);
    await this.env.STEPS.sendBatch(
      steps.map((n) => {
        const step = this.plan[n - 1] as Step;
        const body: StepMessage = { run_id: runId, step: n, op: step.op, args: this.resolve(step) };
        if (step.op === "todo") body.text = this.spec?.text ?? "";
        return { body, contentType: "json" as const };
      }),
    );
  }
}

function specFrom(url: URL): Spec | null {
  const scenario = url.searchParams.get("scenario") ?? "";
  if (!SCENARIOS.includes(scenario)) return null;
  return {
    scenario: scenario as Scenario,
    text: url.searchParams.get("text") ?? "",
    n: Number(url.searchParams.get("n") ?? 1),
    sleepMs: Number(url.searchParams.get("sleep_ms") ?? 100),
  };
}

export default {
  /**
   * `POST /run?scenario=calc-dag|sleep-dag|fan-out|chain[&n=N][&sleep_ms=M]&placement=inline|queue`:
   * inline answers `{status: "completed", result}`; queue answers `{run_id, status: "running"}`
   * and the client follows `GET /run/<run_id>/live`.
   */
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    if (url.pathname === "/todos") {
      // The benchmark's check that each todo exists exactly once: texts with a prefix, counted.
      await todos(env);
      const { results } = await env.DB.prepare("SELECT text, COUNT(*) AS n FROM todos WHERE text LIKE ? GROUP BY text")
        .bind(`${url.searchParams.get("prefix") ?? ""}%`)
        .all<{ text: string; n: number }>();
      return Response.json(results);
    }
    const live = /^\/run\/([0-9a-f]{64})\/live$/.exec(url.pathname);
    if (live) return env.RUNS.get(env.RUNS.idFromString(live[1] as string)).fetch(request);
    const spec = url.pathname === "/run" && request.method === "POST" ? specFrom(url) : null;
    if (!spec) return new Response("not found", { status: 404 });
    const queue = url.searchParams.get("placement") === "queue";
    if (!queue && (spec.scenario === "sleep-dag" || spec.scenario === "sleep" || spec.scenario === "todo"))
      return new Response(`${spec.scenario} runs through the queue`, { status: 400 });
    const id = env.RUNS.newUniqueId();
    const runId = id.toString();
    const stub = env.RUNS.get(id);
    if (queue) {
      await stub.start(runId, spec);
      return Response.json({ run_id: runId, status: "running" });
    }
    return Response.json({ run_id: runId, status: "completed", result: await stub.runInline(spec) });
  },

  /** One step per message; a batch's messages run concurrently, each reports by RPC. */
  async queue(batch: MessageBatch<StepMessage>, env: Env): Promise<void> {
    await Promise.all(
      batch.messages.map(async (m) => {
        const { run_id, step } = m.body;
        try {
          const output = await compute(m.body, env);
          await env.RUNS.get(env.RUNS.idFromString(run_id)).report(run_id, step, output);
          m.ack();
        } catch {
          m.retry();
        }
      }),
    );
  },
};
