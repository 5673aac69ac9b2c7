import { DurableObject } from "cloudflare:workers";
import type { RunSummary } from "../contracts/history";
import type { Approval } from "../contracts/waiting";
import type { Env } from "../env";
import { countedSql, countedStub, counting } from "../observability/cost";

export interface Admission {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the current window ends. */
  resetMs: number;
}

/** Where a run stands for its tenant's quotas: holding an active slot, parked on a wait, or over. */
export type RunPlace = "active" | "waiting" | "finished";

/** What a run's coordinator tells its tenant's gate whenever one of these changes (through its outbox). */
export interface GateView {
  /** The run's log position: an older view never overwrites a newer one. */
  seq: number;
  place: RunPlace;
  summary: RunSummary;
  /** Tools the plan uses (for `?tool=` while the run is listed from here). */
  tools: string[];
  /** Approval steps waiting now. */
  approvals: Omit<Approval, "run_id" | "prompt">[];
}

/** Filters of a listing served from the gate (the same as `GET /runs`'s). */
export interface GateListQuery {
  status?: string;
  tool?: string;
  since?: string;
  until?: string;
  q?: string;
  rerun_of?: string;
  /** Only rows before this (created_at, run_id), newest first. */
  before?: { c: string; r: string } | null;
  limit: number;
}

/** Finished, not yet archived runs a listing reports by id (an archive backed up past this makes offsets approximate). */
const MAX_FINISHED_IDS = 500;

/** How long a finished run stays listed from here after D1 holds it (covers readers of a lagging D1). */
const KEEP_ARCHIVED_MS = 10 * 60 * 1000;
/** How often the gate deletes the archived runs it no longer needs to list. */
const SWEEP_EVERY_MS = 60 * 1000;

/**
 * One per tenant. Exact where it must be — two simultaneous POSTs never both take the last
 * active-run slot — and the tenant's live index: its active and waiting runs and those that
 * finished recently but are not in D1 yet, so a run is listed the moment its POST answers and
 * shows its final status at once, without D1 on any step's path. Also the approval inbox, the
 * daily LLM token budget, and request windows per API key (in memory: an eviction forgets a
 * partial window, which errs towards letting a client through).
 *
 * Nothing is written until a tenant acts: a health ping or a read of an unknown tenant stores
 * nothing.
 */
export class TenantGate extends DurableObject<Env> {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private ready = false;
  /** When this instance last deleted archived runs past `KEEP_ARCHIVED_MS`. */
  private swept = 0;

  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = counting(env) ? countedSql(ctx.storage.sql) : ctx.storage.sql;
  }

  /** Whether the tables exist (a read), creating them only when `create` (before a write). */
  private tables(create: boolean): boolean {
    if (this.ready) return true;
    const found = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").toArray();
    if (found.length > 0 || create) {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, place TEXT NOT NULL, seq INTEGER NOT NULL,
        summary TEXT NOT NULL, tools TEXT NOT NULL, rerun_of TEXT, archived INTEGER NOT NULL DEFAULT 0,
        finished_at INTEGER)`);
      this.sql.exec("CREATE INDEX IF NOT EXISTS runs_newest ON runs (created_at DESC, run_id DESC)");
      this.sql.exec(`CREATE TABLE IF NOT EXISTS approvals (
        run_id TEXT NOT NULL, step_number INTEGER NOT NULL, since TEXT NOT NULL, timeout_at TEXT,
        message TEXT NOT NULL, prompt TEXT NOT NULL, PRIMARY KEY (run_id, step_number))`);
      this.sql.exec("CREATE INDEX IF NOT EXISTS approvals_oldest ON approvals (since, run_id, step_number)");
      this.sql.exec("CREATE TABLE IF NOT EXISTS tokens (day TEXT PRIMARY KEY, used INTEGER NOT NULL)");
      this.ready = true;
    }
    return this.ready;
  }

  async ping(): Promise<true> {
    return true;
  }

  /**
   * Counts requests of `keyId` against `limit` per `windowMs`: grants up to `want` of them (a
   * consumer isolate leases a slice of the window and spends it locally), `granted: 0` when the
   * window is spent.
   */
  async admit(keyId: string, limit: number, windowMs: number, want = 1): Promise<Admission & { granted: number }> {
    const now = Date.now();
    const start = now - (now % windowMs);
    const w = this.windows.get(keyId);
    const current = w && w.start === start ? w : { start, count: 0 };
    const granted = Math.max(0, Math.min(want, limit - current.count));
    current.count += granted;
    this.windows.set(keyId, current);
    return {
      allowed: granted > 0,
      granted,
      limit,
      remaining: Math.max(0, limit - current.count),
      resetMs: start + windowMs - now,
    };
  }

  /**
   * Active and waiting runs (the places with a limit), counted once per instance and then kept by
   * `write` (this object is the only writer).
   */
  private counts: Map<string, number> | null = null;

  private count(place: RunPlace): number {
    this.counts ??= new Map(
      this.sql
        .exec<{ place: string; n: number }>(
          "SELECT place, COUNT(*) AS n FROM runs WHERE place IN ('active', 'waiting') GROUP BY place",
        )
        .toArray()
        .map((r) => [r.place, r.n]),
    );
    return this.counts.get(place) ?? 0;
  }

  /**
   * Lists a new run and gives it its place, from its coordinator before the run's first commit: an
   * active slot unless the tenant already has `maxActive` (then nothing is stored and the run is
   * refused), a waiting place when it starts parked (within `maxWaiting`, else an active slot), or
   * none when it already finished (a pure plan done inside its POST never occupies a slot).
   * Idempotent per run.
   */
  async open(
    runId: string,
    view: GateView,
    limits: { maxActive: number; maxWaiting: number },
  ): Promise<{ allowed: boolean; active: number }> {
    this.tables(true);
    const known = this.sql.exec("SELECT 1 FROM runs WHERE run_id = ?", runId).toArray().length > 0;
    const active = this.count("active");
    if (known) return { allowed: true, active };
    let place = view.place;
    if (place === "waiting" && this.count("waiting") >= limits.maxWaiting) place = "active";
    if (place === "active" && active >= limits.maxActive) return { allowed: false, active };
    this.write(runId, { ...view, place }, null);
    return { allowed: true, active: active + (place === "active" ? 1 : 0) };
  }

  private write(runId: string, view: GateView, before: string | null): void {
    this.count(view.place); // the counts are read before the write they follow
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `INSERT INTO runs (run_id, created_at, place, seq, summary, tools, rerun_of, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (run_id) DO UPDATE SET place = excluded.place, seq = excluded.seq,
           summary = excluded.summary, tools = excluded.tools, finished_at = excluded.finished_at`,
        runId,
        view.summary.created_at,
        view.place,
        view.seq,
        JSON.stringify(view.summary),
        JSON.stringify(view.tools),
        view.summary.rerun_of?.run_id ?? null,
        view.place === "finished" ? Date.now() : null,
      );
      // A run the gate did not list yet has no approvals here to replace.
      if (before !== null) this.sql.exec("DELETE FROM approvals WHERE run_id = ?", runId);
      for (const a of view.approvals) {
        this.sql.exec(
          "INSERT INTO approvals (run_id, step_number, since, timeout_at, message, prompt) VALUES (?, ?, ?, ?, ?, ?)",
          runId,
          a.step_number,
          a.since,
          a.timeout_at,
          a.message,
          view.summary.prompt,
        );
      }
    });
    if (before === view.place) return;
    const counts = this.counts as Map<string, number>;
    if (before === "active" || before === "waiting") counts.set(before, (counts.get(before) ?? 1) - 1);
    if (view.place !== "finished") counts.set(view.place, (counts.get(view.place) ?? 0) + 1);
  }

  /**
   * A run's coordinator reports a change: its place (a run whose steps all wait gives its active
   * slot back and counts toward `maxWaiting` instead; past that it keeps its slot), its summary,
   * its waiting approvals. Views older than the one held are ignored.
   */
  async update(runId: string, view: GateView, maxWaiting: number): Promise<void> {
    this.tables(true);
    const row = this.sql
      .exec<{ seq: number; place: string }>("SELECT seq, place FROM runs WHERE run_id = ?", runId)
      .toArray()[0];
    if (row && row.seq >= view.seq) return;
    let place = view.place;
    if (place === "waiting" && row?.place !== "waiting" && this.count("waiting") >= maxWaiting) place = "active";
    this.write(runId, { ...view, place }, row?.place ?? null);
  }

  /** The archive wrote these runs to D1 (at these log positions): D1 lists them from now on. */
  async archived(runs: { run_id: string; seq: number }[]): Promise<void> {
    if (!this.tables(false)) return;
    const now = Date.now();
    for (const r of runs) {
      this.sql.exec(
        "UPDATE runs SET archived = 1 WHERE run_id = ? AND place = 'finished' AND seq <= ?",
        r.run_id,
        r.seq,
      );
    }
    // The sweep reads every listed run: at most once a minute, not with every archive batch.
    if (now - this.swept < SWEEP_EVERY_MS) return;
    this.swept = now;
    // Finished runs only: the counts of active and waiting runs stay as they are.
    this.sql.exec("DELETE FROM runs WHERE archived = 1 AND finished_at < ?", now - KEEP_ARCHIVED_MS);
  }

  /**
   * Runs listed from here (not yet known to be in D1), newest first, matching the filters; how many
   * match; and which of those have finished (only those can be in D1 already, just archived).
   */
  async list(q: GateListQuery): Promise<{ rows: RunSummary[]; total: number; finished: string[] }> {
    if (!this.tables(false)) return { rows: [], total: 0, finished: [] };
    const where: string[] = ["archived = 0"];
    const args: SqlStorageValue[] = [];
    const when = (value: string | undefined, condition: string) => {
      if (value === undefined) return;
      where.push(condition);
      args.push(value);
    };
    when(q.status, "json_extract(summary, '$.status') = ?");
    when(q.tool, "EXISTS (SELECT 1 FROM json_each(tools) WHERE value = ?)");
    when(q.since, "created_at >= ?");
    when(q.until, "created_at < ?");
    when(q.q, "instr(lower(json_extract(summary, '$.prompt')), lower(?)) > 0");
    when(q.rerun_of, "rerun_of = ?");
    const filter = where.join(" AND ");
    const total = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM runs WHERE ${filter}`, ...args).one().n;
    const finished = this.sql
      .exec<{ run_id: string }>(
        `SELECT run_id FROM runs WHERE ${filter} AND place = 'finished' LIMIT ?`,
        ...args,
        MAX_FINISHED_IDS,
      )
      .toArray()
      .map((r) => r.run_id);
    if (q.before) {
      where.push("(created_at < ? OR (created_at = ? AND run_id < ?))");
      args.push(q.before.c, q.before.c, q.before.r);
    }
    const rows = this.sql
      .exec<{ summary: string }>(
        `SELECT summary FROM runs WHERE ${where.join(" AND ")} ORDER BY created_at DESC, run_id DESC LIMIT ?`,
        ...args,
        q.limit,
      )
      .toArray()
      .map((r) => JSON.parse(r.summary) as RunSummary);
    return { rows, total, finished };
  }

  /** The approval inbox, oldest first, after a (since, run_id, step_number) position. */
  async approvals(limit: number, after: { s: string; r: string; n: number } | null): Promise<Approval[]> {
    if (!this.tables(false)) return [];
    const rows = after
      ? this.sql.exec<Record<string, SqlStorageValue>>(
          `SELECT * FROM approvals WHERE (since, run_id, step_number) > (?, ?, ?)
           ORDER BY since, run_id, step_number LIMIT ?`,
          after.s,
          after.r,
          after.n,
          limit,
        )
      : this.sql.exec<Record<string, SqlStorageValue>>(
          "SELECT * FROM approvals ORDER BY since, run_id, step_number LIMIT ?",
          limit,
        );
    return rows.toArray().map((r) => ({
      run_id: String(r.run_id),
      step_number: Number(r.step_number),
      message: String(r.message),
      since: String(r.since),
      timeout_at: r.timeout_at === null ? null : String(r.timeout_at),
      prompt: String(r.prompt),
    }));
  }

  /**
   * The tenant's LLM token budget for a UTC day: `spend` tokens (0 to only look) and answer what
   * is left. Shared by the planner, the `llm` tool and agent steps.
   */
  async tokens(day: string, limit: number, spend: number): Promise<{ used: number; left: number }> {
    if (spend > 0) {
      this.tables(true);
      this.sql.exec(
        "INSERT INTO tokens (day, used) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET used = used + excluded.used",
        day,
        spend,
      );
      this.sql.exec("DELETE FROM tokens WHERE day < ?", day);
    }
    const used = this.tables(false)
      ? (this.sql.exec<{ used: number }>("SELECT used FROM tokens WHERE day = ?", day).toArray()[0]?.used ?? 0)
      : 0;
    return { used, left: Math.max(0, limit - used) };
  }
}

export interface GateApi {
  ping(): Promise<true>;
  admit(keyId: string, limit: number, windowMs: number, want?: number): Promise<Admission & { granted: number }>;
  open(
    runId: string,
    view: GateView,
    limits: { maxActive: number; maxWaiting: number },
  ): Promise<{ allowed: boolean; active: number }>;
  update(runId: string, view: GateView, maxWaiting: number): Promise<void>;
  archived(runs: { run_id: string; seq: number }[]): Promise<void>;
  list(q: GateListQuery): Promise<{ rows: RunSummary[]; total: number; finished: string[] }>;
  approvals(limit: number, after: { s: string; r: string; n: number } | null): Promise<Approval[]>;
  tokens(day: string, limit: number, spend: number): Promise<{ used: number; left: number }>;
}

export function gateStub(env: Env, tenant: string): GateApi {
  const stub = env.GATES.get(env.GATES.idFromName(tenant)) as unknown as GateApi;
  return counting(env) ? countedStub(stub) : stub;
}
