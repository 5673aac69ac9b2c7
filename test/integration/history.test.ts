import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import type { Problem } from "../../src/contracts/common";
import type { RunSummary } from "../../src/contracts/history";
import type { Run } from "../../src/contracts/run";
import { setFaultInjector } from "../../src/faults";
import type { RunCoordinator } from "../../src/run/coordinator";
import type { RunSnapshot } from "../../src/run/snapshot";
import { syncStatements } from "../../src/store/archive-write";
import { database } from "../../src/store/db";
import { listRunsStatement } from "../../src/store/runs-query";
import { api, createRun, getEvents, getRun, waitForRun } from "../helpers/api";
import { eventsOf, watch } from "../helpers/live";
import { apiKeyFor } from "../helpers/tenants";

afterEach(() => setFaultInjector(null));

async function list(query: string, key?: string): Promise<{ runs: RunSummary[]; next: string | null }> {
  const res = await api(`/api/v1/runs${query}`, key ? { key } : {});
  expect(res.status, await res.clone().text()).toBe(200);
  const link = res.headers.get("Link");
  const next = link ? (/<([^>]{1,2000})>; rel="next"/.exec(link)?.[1] ?? null) : null;
  return { runs: (await res.json()) as RunSummary[], next };
}

/** Polls until `check` passes; the index is written through the archive queue, a moment after the run changes. */
async function eventually<T>(
  what: string,
  fn: () => Promise<T>,
  check: (v: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The status D1 holds for a run, once it holds the run at all (the archive is written a moment after the run ends). */
async function archivedStatus(runId: string, timeoutMs?: number): Promise<string> {
  const row = await eventually(
    "the archived run",
    () => env.DB.prepare("SELECT status FROM runs WHERE run_id = ?").bind(runId).first<{ status: string }>(),
    (r) => r !== null,
    timeoutMs,
  );
  return row?.status ?? "";
}

const calc = (expression: string) => ({
  prompt: `calc ${expression}`,
  plan: { steps: [{ step_number: 1, tool_name: "calculator", tool_input: { expression } }] },
});

describe("GET /api/v1/runs", () => {
  it("lists newest first, pages by offset without overlap, and walks every run once by cursor while runs are created", async () => {
    const key = await apiKeyFor("t-list");
    const created: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await api("/api/v1/runs", { method: "POST", key, json: calc(`${i} + 1`) });
      created.push(((await res.json()) as Run).run_id);
    }
    const all = await eventually(
      "12 listed runs",
      () => list("?limit=100", key),
      (p) => p.runs.length === 12,
    );
    const byNewest = [...all.runs].sort((a, b) =>
      a.created_at === b.created_at ? (a.run_id < b.run_id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1,
    );
    expect(all.runs.map((r) => r.run_id)).toEqual(byNewest.map((r) => r.run_id));
    expect(new Set(all.runs.map((r) => r.run_id))).toEqual(new Set(created));

    const pages = await Promise.all([0, 5, 10].map((offset) => list(`?limit=5&offset=${offset}`, key)));
    const ids = pages.flatMap((p) => p.runs.map((r) => r.run_id));
    expect(ids).toEqual(all.runs.map((r) => r.run_id));
    expect(pages.map((p) => p.runs.length)).toEqual([5, 5, 2]);

    const walked: string[] = [];
    let next: string | null = "/api/v1/runs?limit=4";
    while (next) {
      const page = await list(next.replace("/api/v1/runs", ""), key);
      walked.push(...page.runs.map((r) => r.run_id));
      next = page.next;
      // New runs keep arriving during the walk; they sort before the cursor and never show up in it.
      await api("/api/v1/runs", { method: "POST", key, json: calc("2 * 2") });
    }
    expect(walked).toEqual(all.runs.map((r) => r.run_id));
  });

  it("shows a run while it runs and its final status after", async () => {
    const key = await apiKeyFor("t-live-status");
    const res = await api("/api/v1/runs", {
      method: "POST",
      key,
      json: { prompt: "slow", plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 2500 } }] } },
    });
    const { run_id } = (await res.json()) as Run;
    const running = await eventually(
      "the running run",
      () => list("", key),
      (p) => p.runs.length === 1,
    );
    expect(running.runs[0]).toMatchObject({
      run_id,
      status: "running",
      completed_at: null,
      step_count: 1,
      planner: "explicit",
    });
    const done = await eventually(
      "the finished run",
      () => list("", key),
      (p) => p.runs[0]?.status === "completed",
    );
    expect(done.runs[0]).toMatchObject({ run_id, result: { slept_ms: 2500 }, error: null });
    expect(done.runs[0]?.duration_ms).toBeGreaterThanOrEqual(2500);
  });

  it("filters by status, tool, since / until and prompt text", async () => {
    const key = await apiKeyFor("t-filter");
    const post = async (json: unknown) =>
      (await (await api("/api/v1/runs", { method: "POST", key, json })).json()) as Run;
    const ok = await post(calc("1 + 1"));
    const bad = await post(calc("1 / 0"));
    const text = await post({
      prompt: "Shout THIS please",
      plan: { steps: [{ step_number: 1, tool_name: "text", tool_input: { operation: "uppercase", text: "x" } }] },
    });
    await eventually(
      "three finished runs",
      () => list("", key),
      (p) => p.runs.length === 3 && p.runs.every((r) => r.status !== "running"),
    );

    expect((await list("?status=failed", key)).runs.map((r) => r.run_id)).toEqual([bad.run_id]);
    expect((await list("?tool=text", key)).runs.map((r) => r.run_id)).toEqual([text.run_id]);
    expect((await list("?tool=calculator", key)).runs.map((r) => r.run_id).sort()).toEqual(
      [ok.run_id, bad.run_id].sort(),
    );
    expect((await list("?q=shout%20this", key)).runs.map((r) => r.run_id)).toEqual([text.run_id]);
    expect((await list(`?since=${encodeURIComponent(text.created_at)}`, key)).runs.map((r) => r.run_id)).toEqual([
      text.run_id,
    ]);
    expect((await list(`?until=${encodeURIComponent(bad.created_at)}`, key)).runs.map((r) => r.run_id)).toEqual([
      ok.run_id,
    ]);
    expect((await list("?status=cancelled", key)).runs).toEqual([]);
    // The widest bounds clients send ("no bound"): year 1 (Go's and .NET's zero time), and an
    // offset that carries the instant past year 9999. Every run is inside.
    const all = [ok.run_id, bad.run_id, text.run_id].sort();
    for (const q of [
      "?since=0001-01-01T00:00:00Z",
      "?until=9999-12-31T23:00:00-05:00",
      "?since=0000-01-01T00:00:00%2B01:00",
    ]) {
      expect((await list(q, key)).runs.map((r) => r.run_id).sort(), q).toEqual(all);
    }
    const metrics = await api("/api/v1/metrics?since=0050-06-01T00:00:00Z&until=9999-12-31T23:00:00-05:00", { key });
    expect(metrics.status, await metrics.clone().text()).toBe(200);
  });

  it("never shows another tenant's runs", async () => {
    const mine = await apiKeyFor("t-mine");
    const theirs = await apiKeyFor("t-theirs");
    await api("/api/v1/runs", { method: "POST", key: theirs, json: calc("5 + 5") });
    await eventually(
      "their run listed",
      () => list("", theirs),
      (p) => p.runs.length === 1,
    );
    expect((await list("", mine)).runs).toEqual([]);
    const [their] = (await list("", theirs)).runs;
    expect((await api(`/api/v1/runs/${their?.run_id}`, { key: mine })).status).toBe(404);
  });

  it.each([
    ["limit=0", "limit must be an integer between 1 and 100"],
    ["limit=101", "limit must be an integer between 1 and 100"],
    ["limit=abc", "limit must be an integer between 1 and 100"],
    ["offset=-1", "offset must be an integer between 0 and 10000"],
    ["offset=10001", "offset must be an integer between 0 and 10000"],
    ["limit=1e1", "limit must be an integer between 1 and 100"],
    ["limit=%2010", "limit must be an integer between 1 and 100"],
    ["cursor=bnVsbA", "cursor is not valid"],
    ["cursor=MTIz", "cursor is not valid"],
    ["cursor=WzEsMl0", "cursor is not valid"],
    ["cursor=%FF%FE", "cursor is not valid"],
    ["since=yesterday", "since must be an ISO-8601 timestamp (e.g. 2026-11-26T12:00:00Z)"],
    ["until=2026-13-45", "until must be an ISO-8601 timestamp (e.g. 2026-11-26T12:00:00Z)"],
    ["since=2026-02-30T00:00:00Z", "since must be an ISO-8601 timestamp"], // no such day: not rolled over to March
    ["until=2025-02-29", "until must be an ISO-8601 timestamp"],
    ["cursor=eyJjIjoibm90YWRhdGUiLCJyIjoieCJ9", "cursor is not valid"], // {"c":"notadate","r":"x"}: a position this API never made
    ["status=done", "status"],
    ["cursor=not-a-cursor", "cursor is not valid: pass the value from a Link header"],
    ["offset=1&cursor=abc", "offset and cursor cannot be used together"],
  ])("answers %s with 400 naming the parameter", async (query, detail) => {
    const res = await api(`/api/v1/runs?${query}`);
    expect(res.status).toBe(400);
    expect(res.headers.get("Content-Type")).toBe("application/problem+json");
    expect(((await res.json()) as Problem).detail).toContain(detail);
  });

  it("uses an index for every listing and metrics query (no full table scan)", async () => {
    const db = database(env.DB);
    const queries = [
      {},
      { status: "completed" as const },
      { tool: "calculator" },
      { since: "2026-01-01T00:00:00.000Z", until: "2027-01-01T00:00:00.000Z" },
      { q: "calc" },
      { rerun_of: "r" },
    ].map((f) =>
      listRunsStatement(db, "t", { limit: 10, ...f }, { c: "2026-11-26T00:00:00.000Z", r: "x" }, 11).toSQL(),
    );
    const { RUNS_BY_STATUS_SQL, RUN_DURATIONS_SQL, STEPS_BY_STATUS_SQL, TOOL_STATS_SQL, COMPENSATIONS_BY_STATUS_SQL } =
      await import("../../src/store/metrics");
    const metricsSql = [
      RUNS_BY_STATUS_SQL,
      RUN_DURATIONS_SQL,
      STEPS_BY_STATUS_SQL,
      TOOL_STATS_SQL,
      COMPENSATIONS_BY_STATUS_SQL,
    ].map((sql) => ({
      sql,
      params: ["t", "2026-01-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"],
    }));
    for (const { sql, params } of [...queries, ...metricsSql]) {
      const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>();
      const details = plan.results.map((r) => r.detail);
      // The metrics queries name their tables `r` and `s`.
      const scans = details.filter((d) => /^SCAN (runs|run_steps|r|s)\b/.test(d));
      expect(scans, `${sql}\n${details.join("\n")}`).toEqual([]);
      expect(
        details.some(
          (d) => /^SEARCH (runs|run_steps|r|s) USING (COVERING )?INDEX/.test(d) || /USING PRIMARY KEY/.test(d),
        ),
      ).toBe(true);
    }
  });
});

describe("archive and retention", () => {
  it("serves a run identically from D1 after its Durable Object storage is deleted", async () => {
    const created = await createRun({
      prompt: "archive me",
      plan: {
        steps: [
          { step_number: 1, tool_name: "calculator", tool_input: { expression: "6 * 7" } },
          { step_number: 2, tool_name: "text", tool_input: { operation: "reverse", text: "ab{{steps.1.output}}" } },
        ],
      },
    });
    const live = await waitForRun(created.run_id);
    const events = await getEvents(created.run_id);
    const stub = env.RUNS.get(env.RUNS.idFromName(`dev:${created.run_id}`));
    // The test config keeps finished runs for 3 s after they are archived.
    await eventually(
      "the coordinator to delete its storage",
      () => runInDurableObject(stub, (instance: RunCoordinator) => instance.get()),
      (r) => r === null,
    );
    const fromD1 = await getRun(created.run_id);
    expect(JSON.stringify(fromD1)).toBe(JSON.stringify(live));
    expect(await getEvents(created.run_id)).toEqual(events);
    expect(await getEvents(created.run_id, 3)).toEqual(events.slice(3));
    const { session } = await watch(created.run_id, { after: 0 });
    expect(await session.closed).toBe(1000);
    expect(session.messages[0]).toEqual({ type: "snapshot", run: live, seq: events.length });
    expect(eventsOf(session.messages)).toEqual(events);
    expect((await api(`/api/v1/runs/${created.run_id}/cancel`, { method: "POST" })).status).toBe(409);
  });

  it("archives a finished run whose archive message was lost: its purge finds D1 without it and syncs again first", {
    timeout: 30_000,
  }, async () => {
    const key = await apiKeyFor("t-lost-archive");
    const lost = new Set<string>();
    setFaultInjector({
      loseArchiveMessage(runId) {
        if (lost.has(runId)) return false;
        lost.add(runId);
        return true;
      },
    });
    const res = await api("/api/v1/runs", { method: "POST", key, json: calc("6 * 7") });
    const { run_id } = (await res.json()) as Run;
    // The archive handed to the gate is lost; the run's purge finds D1 without it and syncs it
    // through the queue before its storage goes.
    const archived = await archivedStatus(run_id, 20_000);
    expect(lost.has(run_id)).toBe(true);
    expect(archived).toBe("completed");
    const stub = env.RUNS.get(env.RUNS.idFromName(`t-lost-archive:${run_id}`));
    await eventually(
      "the coordinator to delete its storage",
      () => runInDurableObject(stub, (instance: RunCoordinator) => instance.get()),
      (r) => r === null,
      20_000,
    );
    expect((await api(`/api/v1/runs/${run_id}`, { key }).then((r) => r.json())) as Run).toMatchObject({
      status: "completed",
      result: 42,
    });
  });

  it("sends a run finished inside its POST to the archive without storing an outbox row", async () => {
    const key = await apiKeyFor("t-no-outbox");
    const { run_id } = (await (await api("/api/v1/runs", { method: "POST", key, json: calc("5 * 5") })).json()) as Run;
    expect(await archivedStatus(run_id)).toBe("completed");
    const stub = env.RUNS.get(env.RUNS.idFromName(`t-no-outbox:${run_id}`));
    const tables = await runInDurableObject(stub, (_: RunCoordinator, state: DurableObjectState) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .toArray()
        .map((r) => r.name),
    );
    expect(tables).toContain("log");
    expect(tables).not.toContain("outbox");
  });

  it("hands the archive of a run to its tenant's gate, which writes it to D1 without an archive message", async () => {
    const key = await apiKeyFor("t-gate-archives");
    const sends: string[] = [];
    setFaultInjector({ beforeArchiveSend: (runId) => void sends.push(runId) });
    // One finished inside its POST (the archive goes with the gate's `open`), one through the
    // queue (with the view that finishes it, from the outbox).
    const inline = (await (await api("/api/v1/runs", { method: "POST", key, json: calc("9 * 9") })).json()) as Run;
    const queued = (await (
      await api("/api/v1/runs", {
        method: "POST",
        key,
        json: { prompt: "nap", plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 50 } }] } },
      })
    ).json()) as Run;
    expect(inline.status).toBe("completed");
    expect(queued.status).not.toBe("completed");
    const gate = env.GATES.get(env.GATES.idFromName("t-gate-archives"));
    for (const run_id of [inline.run_id, queued.run_id]) {
      const archived = await eventually(
        "the archived run",
        () =>
          env.DB.prepare("SELECT r.status, l.last_seq FROM runs r JOIN run_logs l USING (run_id) WHERE run_id = ?")
            .bind(run_id)
            .first<{ status: string; last_seq: number }>(),
        (row) => row !== null,
      );
      expect(archived?.status).toBe("completed");
      const served = (await api(`/api/v1/runs/${run_id}/events`, { key }).then((r) => r.json())) as { seq: number }[];
      expect(archived?.last_seq).toBe(served.at(-1)?.seq);
      // The gate let go of the archive and lists the run from D1 from now on.
      const row = await runInDurableObject(gate, (_: unknown, state: DurableObjectState) =>
        state.storage.sql
          .exec<{ archived: number; archive: string | null }>(
            "SELECT archived, archive FROM runs WHERE run_id = ?",
            run_id,
          )
          .one(),
      );
      expect(row).toEqual({ archived: 1, archive: null });
    }
    expect(sends).toEqual([]);
  });

  it("writes the archives a gate holds after the gate restarts", async () => {
    const key = await apiKeyFor("t-gate-restart");
    const sends: string[] = [];
    setFaultInjector({ beforeArchiveSend: (runId) => void sends.push(runId) });
    const { run_id } = (await (await api("/api/v1/runs", { method: "POST", key, json: calc("3 * 3") })).json()) as Run;
    // The gate forgets what it held in memory before its alarm writes the archive to D1.
    await evictDurableObject(env.GATES.get(env.GATES.idFromName("t-gate-restart")));
    expect(await archivedStatus(run_id)).toBe("completed");
    // Written by the restarted gate, not by the run's purge (which would sync through the queue).
    expect(sends).toEqual([]);
  });

  it("adds the archive column to a gate created before archives were handed to it", async () => {
    const key = await apiKeyFor("t-old-gate");
    const gate = env.GATES.get(env.GATES.idFromName("t-old-gate"));
    // The runs table as gates created it before v1.1's archive hand-over.
    await runInDurableObject(gate, (_: unknown, state: DurableObjectState) => {
      state.storage.sql.exec(`CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, place TEXT NOT NULL, seq INTEGER NOT NULL,
        summary TEXT NOT NULL, tools TEXT NOT NULL, rerun_of TEXT, archived INTEGER NOT NULL DEFAULT 0,
        finished_at INTEGER)`);
    });
    await evictDurableObject(gate);
    const res = await api("/api/v1/runs", { method: "POST", key, json: calc("4 * 4") });
    expect(res.status).toBe(201);
    const { run_id } = (await res.json()) as Run;
    expect((await list("", key)).runs.map((r) => r.run_id)).toEqual([run_id]);
    expect(await archivedStatus(run_id)).toBe("completed");
    const columns = await runInDurableObject(gate, (_: unknown, state: DurableObjectState) =>
      state.storage.sql
        .exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'runs'")
        .one()
        .sql.includes("archive TEXT"),
    );
    expect(columns).toBe(true);
  });

  it("stores an archive send that failed in the outbox and retries it from there", { timeout: 20_000 }, async () => {
    const key = await apiKeyFor("t-send-fails");
    const sends: string[] = [];
    setFaultInjector({
      beforeArchiveSend(runId) {
        sends.push(runId);
        if (sends.filter((r) => r === runId).length === 1) throw new Error("injected: queue unavailable");
      },
    });
    // A run too large to hand to the gate (over 100,000 characters as JSON) goes through the queue.
    const big = "x".repeat(9_000);
    const steps = [1, 2, 3, 4].map((n) => ({
      step_number: n,
      tool_name: "text",
      tool_input: { operation: "uppercase", text: big },
    }));
    const res = await api("/api/v1/runs", { method: "POST", key, json: { prompt: "large", plan: { steps } } });
    const { run_id, status } = (await res.json()) as Run;
    expect(status).toBe("completed");
    const stub = env.RUNS.get(env.RUNS.idFromName(`t-send-fails:${run_id}`));
    const stored = await eventually(
      "the failed send in the outbox",
      () =>
        runInDurableObject(stub, (_: RunCoordinator, state: DurableObjectState) =>
          state.storage.sql
            .exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'outbox'")
            .one().n > 0
            ? state.storage.sql.exec<{ kind: string }>("SELECT kind FROM outbox").toArray()
            : [],
        ),
      (rows) => rows.length > 0,
    );
    expect(stored.map((r) => r.kind)).toEqual(["sync"]);
    expect(await archivedStatus(run_id)).toBe("completed");
    expect(sends.filter((r) => r === run_id).length).toBeGreaterThanOrEqual(2);
  });

  it("keeps D1 at the newest snapshot of a run whichever order its syncs arrive in", async () => {
    const created = await createRun({
      prompt: "two syncs",
      plan: {
        steps: [
          { step_number: 1, tool_name: "calculator", tool_input: { expression: "6 * 7" } },
          { step_number: 2, tool_name: "text", tool_input: { operation: "reverse", text: "ab{{steps.1.output}}" } },
        ],
      },
    });
    await waitForRun(created.run_id);
    const stub = env.RUNS.get(env.RUNS.idFromName(`dev:${created.run_id}`));
    const done = (await runInDurableObject(stub, (instance: RunCoordinator) => instance.snapshot())) as RunSnapshot;
    // The same run under a fresh id (the real archive of the original must not interfere), and a
    // snapshot of it from before its last step ended.
    const newer = (runId: string): RunSnapshot => ({ ...done, run: { ...done.run, run_id: runId } });
    const older = (runId: string): RunSnapshot => ({
      ...done,
      seq: done.seq - 3,
      finished: false,
      events: null,
      run: {
        ...done.run,
        run_id: runId,
        status: "running",
        result: null,
        completed_at: null,
        execution_log: done.run.execution_log.map((e) =>
          e.step_number === 2 ? { ...e, status: "running", output: null, completed_at: null, duration_ms: null } : e,
        ),
      },
    });
    const sync = (snap: RunSnapshot) => env.DB.batch(syncStatements(env.DB, snap));
    const stored = async (runId: string) => ({
      run: await env.DB.prepare("SELECT status, seq, archived, result, step_count FROM runs WHERE run_id = ?")
        .bind(runId)
        .first(),
      steps: (
        await env.DB.prepare("SELECT step_number, status, output FROM run_steps WHERE run_id = ? ORDER BY step_number")
          .bind(runId)
          .all()
      ).results,
      pages: (await env.DB.prepare("SELECT page, last_seq FROM run_logs WHERE run_id = ?").bind(runId).all()).results,
    });
    const finalRows = {
      run: { status: "completed", seq: done.seq, archived: 1, result: JSON.stringify("24ba"), step_count: 2 },
      steps: [
        { step_number: 1, status: "succeeded", output: "42" },
        { step_number: 2, status: "succeeded", output: JSON.stringify("24ba") },
      ],
      pages: [{ page: 0, last_seq: done.seq }],
    };
    for (const [label, order] of [
      ["newest last", (id: string) => [older(id), newer(id)]],
      ["newest first", (id: string) => [newer(id), older(id)]],
    ] as const) {
      const runId = crypto.randomUUID();
      for (const snap of order(runId)) await sync(snap);
      expect(await stored(runId), label).toEqual(finalRows);
    }
  });

  it("writes one D1 row per archived step, and a rerun index entry only for a rerun (D1 bills index entries as rows)", async () => {
    const created = await createRun({
      prompt: "rows written",
      plan: { steps: [{ step_number: 1, tool_name: "calculator", tool_input: { expression: "6 * 7" } }] },
    });
    await waitForRun(created.run_id);
    const stub = env.RUNS.get(env.RUNS.idFromName(`dev:${created.run_id}`));
    const done = (await runInDurableObject(stub, (instance: RunCoordinator) => instance.snapshot())) as RunSnapshot;
    const rowsWritten = async (snap: RunSnapshot) =>
      (await env.DB.batch(syncStatements(env.DB, snap))).reduce((n, r) => n + r.meta.rows_written, 0);
    const plain = await rowsWritten({ ...done, run: { ...done.run, run_id: crypto.randomUUID(), rerun_of: null } });
    const rerun = await rowsWritten({
      ...done,
      run: { ...done.run, run_id: crypto.randomUUID(), rerun_of: { run_id: created.run_id, from_step: 1 } },
    });
    expect(rerun - plain).toBe(1);
    const step = done.run.execution_log[0];
    if (!step) throw new Error("the run has no step");
    const twoSteps = await rowsWritten({
      ...done,
      run: {
        ...done.run,
        run_id: crypto.randomUUID(),
        rerun_of: null,
        execution_log: [step, { ...step, step_number: 2 }],
      },
    });
    expect(twoSteps - plain).toBe(1);
    // The partial index still serves `rerun_of = ?` (the query implies its condition).
    const plan = await env.DB.prepare("EXPLAIN QUERY PLAN SELECT COUNT(*) FROM runs WHERE tenant = ? AND rerun_of = ?")
      .bind("dev", created.run_id)
      .all<{ detail: string }>();
    expect(plan.results.map((r) => r.detail).join("\n")).toContain("runs_tenant_rerun_of_idx");
  });

  it("keeps the archive when D1 writes fail: they are retried, not lost", async () => {
    const key = await apiKeyFor("t-d1-down");
    let failures = 3;
    setFaultInjector({
      beforeArchiveWrite() {
        if (failures-- > 0) throw new Error("injected: D1 unavailable");
      },
    });
    const res = await api("/api/v1/runs", { method: "POST", key, json: calc("7 * 6") });
    const { run_id } = (await res.json()) as Run;
    // Listed at once (from the tenant's gate) while D1 refuses writes...
    expect((await list("", key)).runs[0]).toMatchObject({ run_id, status: "completed", result: 42 });
    // ...and archived once D1 takes them: the whole log, in one row.
    const archived = await eventually(
      "the archived log",
      () => env.DB.prepare("SELECT events FROM run_logs WHERE run_id = ?").bind(run_id).first<{ events: string }>(),
      (row) => row !== null,
      20_000,
    );
    expect(failures).toBeLessThan(0);
    const served = (await api(`/api/v1/runs/${run_id}/events`, { key }).then((r) => r.json())) as { seq: number }[];
    expect((JSON.parse(archived?.events ?? "[]") as { seq: number }[]).map((e) => e.seq)).toEqual(
      served.map((e) => e.seq),
    );
  });
});
