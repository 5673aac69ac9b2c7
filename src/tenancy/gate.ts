import { DurableObject } from "cloudflare:workers";
import { writeArchive } from "../archive/write";
import type { RunSummary } from "../contracts/history";
import type { Approval } from "../contracts/waiting";
import type { Env } from "../env";
import { faultInjector } from "../faults";
import { count, countedEnv, countedSql, countedStub, counting } from "../observability/cost";
import { log } from "../observability/log";
import type { RunSnapshot } from "../run/snapshot";
import { type HoldAnswer, holdTokens, settleTokens, TOKEN_TABLES } from "./token-holds";

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
/** How long the gate gathers the archives handed to it before writing them to D1 together. */
const ARCHIVE_DELAY_MS = 1000;
/** Most archives written to D1 per alarm; the rest follow at once. */
const ARCHIVE_BATCH = 100;
/** Longest wait between tries while D1 refuses the writes. */
const ARCHIVE_RETRY_MAX_MS = 60 * 1000;

/**
 * One per tenant. Exact where it must be — two simultaneous POSTs never both take the last
 * active-run slot — and the tenant's live index: its active and waiting runs and those that
 * finished recently but are not in D1 yet, so a run is listed the moment its POST answers and
 * shows its final status at once, without D1 on any step's path. Also the approval inbox, the
 * daily LLM token budget, and request windows per API key (in memory: an eviction forgets a
 * partial window, which errs towards letting a client through).
 *
 * A run's coordinator hands the gate its archive (the snapshot D1 keeps) with the view that
 * finishes it; the gate keeps it in the run's row and writes the archives it holds to D1 a moment
 * later, many runs per batch, then lists those runs from D1 — so the common run costs no archive
 * message. A large run, and a finished run's later events, go through the archive queue.
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

  /** Runs whose archive this gate holds, not yet in D1 (null until first needed after a start). */
  private pending: Set<string> | null = null;
  /** When the alarm that writes them is set for (null: not known to be set). */
  private flushAt: number | null = null;
  /** D1 writes that failed in a row: the next try waits longer. */
  private failures = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, countedEnv(env));
    this.sql = counting(env) ? countedSql(ctx.storage.sql) : ctx.storage.sql;
  }

  /** Whether the tables exist (a read), creating them only when `create` (before a write). */
  private tables(create: boolean): boolean {
    if (this.ready) return true;
    const found = this.sql
      .exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'runs'")
      .toArray();
    if (found.length > 0 || create) {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, place TEXT NOT NULL, seq INTEGER NOT NULL,
        summary TEXT NOT NULL, tools TEXT NOT NULL, rerun_of TEXT, archived INTEGER NOT NULL DEFAULT 0,
        finished_at INTEGER, archive TEXT)`);
      // A gate created before archives were handed to it gets the column.
      if (found[0] && !/\barchive TEXT\b/.test(found[0].sql)) this.sql.exec("ALTER TABLE runs ADD COLUMN archive TEXT");
      this.sql.exec("CREATE INDEX IF NOT EXISTS runs_newest ON runs (created_at DESC, run_id DESC)");
      this.sql.exec(`CREATE TABLE IF NOT EXISTS approvals (
        run_id TEXT NOT NULL, step_number INTEGER NOT NULL, since TEXT NOT NULL, timeout_at TEXT,
        message TEXT NOT NULL, prompt TEXT NOT NULL, PRIMARY KEY (run_id, step_number))`);
      this.sql.exec("CREATE INDEX IF NOT EXISTS approvals_oldest ON approvals (since, run_id, step_number)");
      for (const table of TOKEN_TABLES) this.sql.exec(table);
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
    archive?: string,
  ): Promise<{ allowed: boolean; active: number }> {
    this.tables(true);
    const known = this.sql.exec("SELECT 1 FROM runs WHERE run_id = ?", runId).toArray().length > 0;
    const active = this.count("active");
    if (known) return { allowed: true, active };
    let place = view.place;
    if (place === "waiting" && this.count("waiting") >= limits.maxWaiting) place = "active";
    if (place === "active" && active >= limits.maxActive) return { allowed: false, active };
    this.write(runId, { ...view, place }, null, archive);
    return { allowed: true, active: active + (place === "active" ? 1 : 0) };
  }

  /** Stores a run's view (and the archive that came with a finished one); the archive's D1 write follows. */
  private write(runId: string, view: GateView, before: string | null, archive?: string): void {
    const handed = view.place === "finished" && archive !== undefined ? archive : null;
    this.count(view.place); // the counts are read before the write they follow
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `INSERT INTO runs (run_id, created_at, place, seq, summary, tools, rerun_of, finished_at, archive)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (run_id) DO UPDATE SET place = excluded.place, seq = excluded.seq,
           summary = excluded.summary, tools = excluded.tools, finished_at = excluded.finished_at,
           archive = excluded.archive`,
        runId,
        view.summary.created_at,
        view.place,
        view.seq,
        JSON.stringify(view.summary),
        JSON.stringify(view.tools),
        view.summary.rerun_of?.run_id ?? null,
        view.place === "finished" ? Date.now() : null,
        handed,
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
    if (handed !== null) {
      this.pending?.add(runId);
      this.flushArchivesIn(ARCHIVE_DELAY_MS);
    }
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
  async update(runId: string, view: GateView, maxWaiting: number, archive?: string): Promise<void> {
    this.tables(true);
    const row = this.sql
      .exec<{ seq: number; place: string }>("SELECT seq, place FROM runs WHERE run_id = ?", runId)
      .toArray()[0];
    if (row && row.seq >= view.seq) return;
    let place = view.place;
    if (place === "waiting" && row?.place !== "waiting" && this.count("waiting") >= maxWaiting) place = "active";
    this.write(runId, { ...view, place }, row?.place ?? null, archive);
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
    this.sweep(now);
  }

  /** Deletes the archived runs past `KEEP_ARCHIVED_MS`: it reads every listed run, so at most once a minute. */
  private sweep(now: number): void {
    if (now - this.swept < SWEEP_EVERY_MS) return;
    this.swept = now;
    // Finished runs only: the counts of active and waiting runs stay as they are.
    this.sql.exec("DELETE FROM runs WHERE archived = 1 AND finished_at < ?", now - KEEP_ARCHIVED_MS);
  }

  /** Makes sure the alarm writes the archives held here within `ms` (set in the turn of the write it follows). */
  private flushArchivesIn(ms: number): void {
    const at = Date.now() + ms;
    if (this.flushAt !== null && this.flushAt <= at) return;
    this.flushAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  /**
   * Writes the archives handed to this gate to D1, many runs per batch, then lists those runs from
   * D1 (as the archive consumer's `archived` does). Should D1 fail, the archives stay here and the
   * alarm tries again, waiting longer each time; a run whose archive never reaches D1 is synced
   * again by its own purge alarm before its storage goes.
   */
  override async alarm(): Promise<void> {
    if (counting(this.env)) count("do_requests");
    this.flushAt = null;
    if (!this.tables(false)) return;
    this.pending ??= new Set(
      this.sql
        .exec<{ run_id: string }>("SELECT run_id FROM runs WHERE archive IS NOT NULL")
        .toArray()
        .map((r) => r.run_id),
    );
    const items: { runId: string; seq: number; snapshot: RunSnapshot }[] = [];
    for (const runId of [...this.pending].slice(0, ARCHIVE_BATCH)) {
      const row = this.sql
        .exec<{ seq: number; archive: string | null }>("SELECT seq, archive FROM runs WHERE run_id = ?", runId)
        .toArray()[0];
      if (!row?.archive) {
        this.pending.delete(runId);
      } else if (faultInjector()?.loseArchiveMessage?.(runId)) {
        this.sql.exec("UPDATE runs SET archive = NULL WHERE run_id = ? AND seq = ?", runId, row.seq);
        this.pending.delete(runId);
      } else {
        items.push({ runId, seq: row.seq, snapshot: JSON.parse(row.archive) as RunSnapshot });
      }
    }
    try {
      await writeArchive(
        this.env.DB,
        items.map((i) => i.snapshot),
      );
      this.failures = 0;
    } catch (err) {
      this.failures++;
      const retryMs = Math.min(ARCHIVE_RETRY_MAX_MS, ARCHIVE_DELAY_MS * 2 ** this.failures);
      log("error", "archive write to D1 failed; will retry", { runs: items.length, retry_ms: retryMs, error: err });
      this.flushArchivesIn(retryMs);
      return;
    }
    for (const { runId, seq } of items) {
      // A newer archive that came in meanwhile stays for the next write.
      const done = this.sql
        .exec("UPDATE runs SET archive = NULL, archived = 1 WHERE run_id = ? AND seq = ? RETURNING run_id", runId, seq)
        .toArray();
      if (done.length > 0) this.pending.delete(runId);
    }
    this.sweep(Date.now());
    if (this.pending.size > 0) this.flushArchivesIn(items.length === ARCHIVE_BATCH ? 0 : ARCHIVE_DELAY_MS);
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

  /**
   * Runs not finished (active or waiting) created in [since, until), by status: what `/metrics`
   * adds to D1's counts, which hold finished runs only.
   */
  async unfinished(since: string, until: string): Promise<Record<string, number>> {
    if (!this.tables(false)) return {};
    const rows = this.sql
      .exec<{ status: string; n: number }>(
        `SELECT json_extract(summary, '$.status') AS status, COUNT(*) AS n FROM runs
         WHERE place != 'finished' AND created_at >= ? AND created_at < ? GROUP BY status`,
        since,
        until,
      )
      .toArray();
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  /** The ids of the runs not finished (active or waiting): the only ones with live streams open. */
  async unfinishedRunIds(): Promise<string[]> {
    if (!this.tables(false)) return [];
    return this.sql
      .exec<{ run_id: string }>("SELECT run_id FROM runs WHERE place != 'finished'")
      .toArray()
      .map((r) => r.run_id);
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

  /** Holds tokens of the tenant's daily LLM budget for a call in flight (src/tenancy/token-holds.ts). */
  async holdTokens(day: string, limit: number, want: number, id: string): Promise<HoldAnswer> {
    this.tables(true);
    return holdTokens(this.sql, day, limit, want, id, Date.now());
  }

  /** Ends a call's hold and charges what it cost. */
  async settleTokens(day: string, id: string, spend: number): Promise<void> {
    this.tables(true);
    settleTokens(this.sql, day, id, spend);
  }
}

export interface GateApi {
  ping(): Promise<true>;
  admit(keyId: string, limit: number, windowMs: number, want?: number): Promise<Admission & { granted: number }>;
  open(
    runId: string,
    view: GateView,
    limits: { maxActive: number; maxWaiting: number },
    archive?: string,
  ): Promise<{ allowed: boolean; active: number }>;
  update(runId: string, view: GateView, maxWaiting: number, archive?: string): Promise<void>;
  archived(runs: { run_id: string; seq: number }[]): Promise<void>;
  list(q: GateListQuery): Promise<{ rows: RunSummary[]; total: number; finished: string[] }>;
  approvals(limit: number, after: { s: string; r: string; n: number } | null): Promise<Approval[]>;
  unfinished(since: string, until: string): Promise<Record<string, number>>;
  unfinishedRunIds(): Promise<string[]>;
  holdTokens(day: string, limit: number, want: number, id: string): Promise<HoldAnswer>;
  settleTokens(day: string, id: string, spend: number): Promise<void>;
}

export function gateStub(env: Env, tenant: string): GateApi {
  const stub = env.GATES.get(env.GATES.idFromName(tenant)) as unknown as GateApi;
  return counting(env) ? countedStub(stub) : stub;
}
