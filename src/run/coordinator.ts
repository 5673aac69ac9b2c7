import { DurableObject } from "cloudflare:workers";
import { now as clockNow } from "../clock";
import { intVar } from "../config";
import type { SignalIdempotency } from "../contracts/body-hash";
import type { Json } from "../contracts/common";
import type { Run, RunEvent } from "../contracts/run";
import type { StepMessage } from "../contracts/tool";
import type { ApproveBody, CallbackAnswer, CallbackBody, SignalAnswer } from "../contracts/waiting";
import type { Env } from "../env";
import { faultInjector } from "../faults";
import { problemResponse } from "../http/problem";
import { count, countedEnv, countedSql, counting } from "../observability/cost";
import { log, setLogLevel } from "../observability/log";
import { database } from "../store/db";
import { archivedUpTo } from "../store/runs-query";
import { gateStub } from "../tenancy/gate";
import { maxWaitingRuns } from "../tenancy/quotas";
import { defaultRegistry } from "../tools/registry";
import { runInline } from "../tools/run";
import type { AttemptGrant } from "../tools/types";
import type { AttemptAsk, AttemptReport, CreatedRun, CreateRunCommand, Refusal, Result, RunApi } from "./api";
import { awaitsConsumer, messageGrant, nextWake, onDeadLetter, onResult, onStart, onTimeouts } from "./attempts";
import { DEFAULT_GRACE, type DecideContext, type Grace } from "./context";
import { onCancel } from "./decide";
import { EventLog } from "./event-log";
import { TERMINAL_RUN_EVENTS } from "./events";
import { gateKey, gateView } from "./gate-view";
import {
  broadcast,
  broadcastDelta,
  KEY_REVOKED_CLOSE,
  MAX_WATCHERS_PER_RUN,
  openStream,
  WATCHER_KEY_HEADER,
  watchAfter,
  watcherTag,
} from "./live";
import { logEvents } from "./log-events";
import { Outbox, type OutboxItem, outboxDelay } from "./outbox";
import { createdEvent, planRun } from "./planning";
import type { RunSnapshot } from "./snapshot";
import { initial, isFinished, type RunState, reduce } from "./state";
import { Tables } from "./tables";
import { parseTask, taskName, transitionOf } from "./tasks";
import { type Command, transition } from "./transition";
import { toRun } from "./view";
import { type Decision, onApprove, onCallback, onReject, onSignal } from "./waiting";

/** Default time a finished, archived run keeps its Durable Object storage. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** A finished run whose archive D1 lacks at purge time is synced again and checked again this much later. */
const PURGE_RECHECK_MS = 60 * 60 * 1000;
const PURGE_RETRY_AT = "purge_retry_at";
/**
 * Largest snapshot sent inside an archive message (Cloudflare Queues carry at most 128 KB), or
 * handed to the tenant's gate with the run's final view.
 */
const MAX_INLINE_SNAPSHOT_CHARS = 100_000;
/** How long the alarm leaves a just-committed side effect to the flush that follows the commit. */
const OUTBOX_GRACE_MS = 5_000;
/** An alarm already set within this time serves as that safety net: no new alarm is written for it. */
const OUTBOX_SAFETY_MS = 60_000;

const secret = (): string => {
  // 24 random bytes = 192 bits, base64url: a callback token's secret part.
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "");
};

/** What the archive keeps of a run: the run as the API shows it, and its whole log once it finished. */
function snapshotOf(state: RunState, run: Run, events: RunEvent[] | null): RunSnapshot {
  return {
    tenant: state.tenant,
    run,
    planner: state.plan?.planner ?? null,
    seq: state.seq,
    finished: isFinished(state),
    events,
  };
}

/** A snapshot's JSON when it fits an archive message or a hand-over to the gate; null when larger. */
function fittingJson(snapshot: RunSnapshot): string | null {
  const text = JSON.stringify(snapshot);
  return text.length <= MAX_INLINE_SNAPSHOT_CHARS ? text : null;
}

const refused = (d: Decision<unknown> & { ok: false }): Refusal => ({ ok: false, status: d.status, detail: d.detail });
const runOf = <A>(r: Result<{ run: Run; answer: A }>): Result<Run> => (r.ok ? { ok: true, value: r.value.run } : r);

/**
 * One run: its event log, its state (a fold of the log), dispatch of ready work through the
 * queue, acceptance of results, waits, compensation, the watchdog alarm and live WebSockets.
 * Every command follows one pattern: decide events (pure), append them and the side effects they
 * cause (outbox) in one transaction, then carry the side effects out (broadcast, enqueue, gate,
 * alarm). Storage is created by the first commit: an id that never held a run stores nothing.
 */
export class RunCoordinator extends DurableObject<Env> implements RunApi {
  private readonly sql: SqlStorage;
  private readonly tables: Tables;
  private readonly log: EventLog;
  private readonly outbox: Outbox;
  private readonly grace: Grace;
  private readonly retentionMs: number;
  private readonly maxWaiting: number;
  /** Run pure tools (calculator, text) inside the coordinator instead of through the queue. */
  private readonly inline: boolean;
  private state: RunState | null;
  private flushing: Promise<void> | null = null;
  private creating: Promise<Result<Run>> | null = null;
  private flushAgain = false;
  /** A commit of a finished run asked for an archive sync that is not sent yet (see `persist`). */
  private syncDue = false;
  /** The alarm time this object last set (undefined: not known, e.g. after a restart). */
  private armed: number | null | undefined = undefined;
  /** The alarm armed is only the outbox's safety net (see `rearm`). */
  private armedAsNet = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, countedEnv(env));
    setLogLevel(env.LOG_LEVEL);
    this.sql = counting(env) ? countedSql(ctx.storage.sql) : ctx.storage.sql;
    this.tables = new Tables(this.sql);
    this.log = new EventLog(this.sql, this.tables);
    this.outbox = new Outbox(this.sql, this.tables);
    this.grace = {
      dispatchMs: intVar(env.WATCHDOG_DISPATCH_GRACE_MS, DEFAULT_GRACE.dispatchMs, 0),
      reportMs: intVar(env.WATCHDOG_REPORT_GRACE_MS, DEFAULT_GRACE.reportMs, 0),
    };
    this.retentionMs = intVar(env.RUN_RETENTION_MS, DEFAULT_RETENTION_MS, 0);
    this.maxWaiting = maxWaitingRuns(env);
    this.inline = env.INLINE_PURE_TOOLS !== "false";
    // SQLite storage is synchronous: the state is rebuilt before any request is delivered.
    this.state = reduce(this.log.after(0));
    // An unfinished run always has an alarm; re-arm it should one have been lost.
    if (this.state) {
      ctx.blockConcurrencyWhile(async () => {
        if ((await ctx.storage.getAlarm()) === null) await this.rearm();
      });
    }
  }

  /**
   * Creates and plans the run, takes its place at the tenant's gate (which may refuse it: 429),
   * then commits and dispatches its first steps. Idempotent: a second call returns the run,
   * marked `replayed`; a call after a refused one (nothing was stored) creates it, not replayed.
   */
  async create(cmd: CreateRunCommand): Promise<Result<CreatedRun>> {
    if (this.state) return { ok: true, value: { run: toRun(this.state), replayed: true } };
    // Planning may wait on an LLM; a second create (an idempotent replay) waits for the first.
    const joining = this.creating !== null;
    this.creating ??= this.createOnce(cmd).finally(() => {
      this.creating = null;
    });
    const result = await this.creating;
    return result.ok ? { ok: true, value: { run: result.value, replayed: joining } } : result;
  }

  private async createOnce(cmd: CreateRunCommand): Promise<Result<Run>> {
    const planned = await planRun(cmd, this.env, defaultRegistry, (p) => this.ctx.waitUntil(p));
    const now = clockNow();
    const created = createdEvent(cmd, now);
    const work = initial(created);
    const ctx = this.decideContext(now);
    const events = [created, ...transition(work, ctx, () => planned)];
    const run = toRun(work);
    const view = gateView(work, run);
    // A run finished in memory hands its archive to the gate with its listing (no archive message).
    const archive = view.place === "finished" ? fittingJson(snapshotOf(work, run, events)) : null;
    const opening = faultInjector()?.failGateOpen?.(cmd.runId)
      ? Promise.reject(new Error("injected: the tenant's gate is unavailable"))
      : gateStub(this.env, cmd.tenant).open(cmd.runId, view, cmd.limits, archive ?? undefined);
    if (view.place === "finished") {
      // A run finished in memory (a pure plan) takes no place, so the gate cannot refuse it: its
      // events are written while the gate lists it, and the answer waits for both. Should the
      // gate fail, the run is erased before anything was sent: the POST fails, leaving nothing.
      this.persist(work, events, ctx, view, archive !== null);
      // Its purge alarm is set in the same turn, so it joins the events' commit instead of
      // costing a commit of its own after the gate answered (the answer waits for both).
      this.ctx.waitUntil(this.rearm(true));
      try {
        await opening;
      } catch (err) {
        await this.erase();
        throw err;
      }
    } else {
      // The gate gives the run its place before anything is stored: a refused run leaves
      // nothing behind, and pure steps that ran inline in memory changed nothing outside.
      const opened = await opening;
      if (!opened.allowed) {
        return {
          ok: false,
          status: 429,
          // Waking runs take their slots back even past the limit, so the count can be over it.
          detail: `Tenant '${cmd.tenant}' already has ${opened.active} active runs; the limit for this key is ${cmd.limits.maxActive}. Retry when one finishes`,
        };
      }
      this.persist(work, events, ctx, view);
    }
    await this.afterCommit(events);
    return { ok: true, value: run };
  }

  async get(): Promise<Run | null> {
    return this.state ? toRun(this.state) : null;
  }

  async events(after: number, limit: number): Promise<RunEvent[] | null> {
    return this.state ? this.log.after(after, limit) : null;
  }

  /**
   * Consumers ask to run attempts (those of one queue batch, together): one grant per ask, null
   * for a stale, duplicate or cancelled one. Decided in order and written in one commit.
   */
  async startAttempts(asks: AttemptAsk[]): Promise<(AttemptGrant | null)[]> {
    const grants: (AttemptGrant | null)[] = asks.map(() => null);
    if (!this.state) return grants;
    await this.commit(
      ...asks.map((a, i): Command => {
        const ref = parseTask(a.step_number, a.task);
        return (s, ctx) => {
          if (!ref) return [];
          const decision = onStart(s, ref, a.attempt, ctx);
          grants[i] = decision.grant;
          return decision.drafts;
        };
      }),
    );
    return grants;
  }

  /**
   * Consumers report attempts' outcomes (those of one run that ended close together, in one
   * commit). An attempt that `ran` on the grant its message carried (a pure tool's step) is
   * started and finished here; a stale or duplicate one is recorded as ignored, like a start that
   * is refused.
   */
  async reportAttempts(reports: AttemptReport[]): Promise<void> {
    if (!this.state) return;
    await this.commit(
      ...reports.flatMap((r): Command[] => {
        const ref = parseTask(r.step_number, r.task);
        if (!ref) return [];
        const finish: Command = (s, ctx) => onResult(s, ref, r.attempt, r.outcome, ctx);
        if (!r.ran) return [finish];
        let started = false;
        return [
          (s, ctx) => {
            const decision = onStart(s, ref, r.attempt, ctx);
            started = decision.grant !== null;
            return decision.drafts;
          },
          (s, ctx) => (started ? finish(s, ctx) : []),
        ];
      }),
    );
  }

  /** The dead-letter consumer reports a message the queue gave up on. */
  async deadLetter(stepNumber: number, attempt: number, reason: string, task?: string): Promise<void> {
    const ref = parseTask(stepNumber, task);
    if (!this.state || !ref) return;
    await this.commit((s, ctx) => onDeadLetter(s, ref, attempt, reason, ctx));
  }

  /** Text a model is writing, passed to watchers while the attempt is current; never stored. */
  async delta(
    stepNumber: number,
    attempt: number,
    task: string | undefined,
    text: string,
    reset = false,
  ): Promise<void> {
    const ref = parseTask(stepNumber, task);
    const s = this.state?.steps.get(stepNumber);
    if (!ref || !s || !this.state || isFinished(this.state)) return;
    const current =
      ref.kind === "turn" ? s.agent?.turns.find((t) => t.ref.index === ref.index) : ref.kind === "step" ? s : undefined;
    if (current?.attempt !== attempt || current.phase !== "running") return;
    broadcastDelta(this.ctx.getWebSockets(), stepNumber, text, reset);
  }

  async cancel(reason: string, compensate: boolean): Promise<Result<Run>> {
    return runOf(await this.decide((s, ctx) => onCancel(s, reason, compensate, ctx)));
  }

  async approve(stepNumber: number, body: ApproveBody): Promise<Result<Run>> {
    return runOf(await this.decide((s, ctx) => onApprove(s, stepNumber, body, "api", ctx)));
  }

  async reject(stepNumber: number, reason: string | undefined): Promise<Result<Run>> {
    return runOf(await this.decide((s) => onReject(s, stepNumber, reason)));
  }

  async signal(
    name: string,
    data: Json,
    idempotency: SignalIdempotency | null,
  ): Promise<Result<SignalAnswer & { replayed?: true }>> {
    const result = await this.decide((s, ctx) => onSignal(s, name, data, idempotency, ctx.now));
    if (!result.ok) return result;
    return { ok: true, value: { run_id: result.value.run.run_id, name, ...result.value.answer } };
  }

  async callback(token: string, body: CallbackBody): Promise<Result<CallbackAnswer>> {
    const result = await this.decide((s, ctx) => onCallback(s, token, body, ctx));
    if (!result.ok) return result;
    return {
      ok: true,
      value: { run_id: result.value.run.run_id, step_number: result.value.answer.step_number, accepted: true },
    };
  }

  /** What the archive copies to D1: the run as served, plus the whole log once it finished. */
  async snapshot(): Promise<RunSnapshot | null> {
    const s = this.state;
    return s ? snapshotOf(s, toRun(s), isFinished(s) ? this.log.after(0) : null) : null;
  }

  /**
   * The watchdog and the timers: times out attempts past their deadline, wakes waits whose time
   * has come, dispatches due retries, retries failed side effects, and deletes a finished run's
   * storage once its retention has passed.
   */
  override async alarm(): Promise<void> {
    if (counting(this.env)) count("do_requests");
    this.armed = undefined; // the alarm that fired is spent
    if (!this.state) return;
    const purgeAt = this.purgeAt();
    if (purgeAt !== null && clockNow() >= purgeAt) {
      if (await this.archived()) {
        await this.purge();
        return;
      }
      // D1 does not hold this run (yet): sync it again and keep the storage until it does.
      const now = clockNow();
      this.write(() => {
        this.outbox.add("sync", { seq: (this.state as RunState).seq }, now);
        this.log.setMeta(PURGE_RETRY_AT, String(now + Math.min(PURGE_RECHECK_MS, Math.max(1000, this.retentionMs))));
      });
    }
    await this.commit((s, ctx) => onTimeouts(s, ctx));
    await this.flushOutbox();
    await this.rearm();
  }

  /** `GET …/live`: a hibernatable WebSocket that gets a snapshot, a replay after `?after=`, then every event. */
  override async fetch(request: Request): Promise<Response> {
    if (!this.state) return problemResponse(404, "Run not found");
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return problemResponse(426, "This endpoint needs a WebSocket upgrade (Upgrade: websocket)");
    }
    if (this.ctx.getWebSockets().length >= MAX_WATCHERS_PER_RUN) {
      return problemResponse(429, `A run accepts at most ${MAX_WATCHERS_PER_RUN} live connections`, {
        headers: { "Retry-After": "5" },
      });
    }
    const asked = new URL(request.url).searchParams.get("after");
    const after = asked === null ? null : Number(asked);
    const { 0: client, 1: server } = new WebSocketPair();
    const finished = isFinished(this.state);
    // A finished run's stream is over at once: a plain socket, which the runtime closes as soon as
    // it is closed (a hibernatable one it keeps open about 10 s after the close frame, so a
    // client that waits for the connection to end waited that long). A live run's hibernates.
    if (finished) server.accept();
    else {
      const keyId = request.headers.get(WATCHER_KEY_HEADER);
      this.ctx.acceptWebSocket(server, keyId ? [watcherTag(keyId)] : []);
      watchAfter(server, after, this.state.seq);
    }
    return openStream(request, client, server, {
      run: toRun(this.state),
      seq: this.state.seq,
      replay: after === null ? [] : this.log.after(after),
      finished,
    });
  }

  async dropWatchers(keyId: string): Promise<number> {
    const sockets = this.ctx.getWebSockets(watcherTag(keyId));
    for (const ws of sockets) {
      try {
        ws.close(KEY_REVOKED_CLOSE.code, KEY_REVOKED_CLOSE.reason);
      } catch {
        // Closed meanwhile: nothing to drop.
      }
    }
    return sockets.length;
  }

  // No webSocketClose handler: from compatibility date 2026-04-07 the runtime answers a
  // client's Close frame itself (web_socket_auto_reply_to_close).
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (counting(this.env)) count("do_requests");
    // The stream is one-way; a client may ping to keep intermediaries from timing it out.
    if (message === "ping") ws.send("pong");
  }

  private decideContext(now: number): DecideContext {
    return {
      now,
      random: Math.random,
      secret,
      registry: defaultRegistry,
      grace: this.grace,
      inline: this.inline,
      runInline: (grant) => runInline(defaultRegistry, grant),
      objectId: this.ctx.id.toString(),
    };
  }

  /** A command that may not fit the run's state: commits its events, or says why it does not fit. */
  private async decide<A>(
    command: (s: RunState, ctx: DecideContext) => Decision<A>,
  ): Promise<Result<{ run: Run; answer: A }>> {
    if (!this.state) return { ok: false, status: 404, detail: "Run not found" };
    let decision: Decision<A> | null = null;
    await this.commit((s, ctx) => {
      decision = command(s, ctx);
      return decision.ok ? decision.drafts : [];
    });
    const d = decision as unknown as Decision<A>;
    if (!d.ok) return refused(d);
    return { ok: true, value: { run: toRun(this.state), answer: d.answer } };
  }

  /**
   * Decides and writes one command's events. The state changes in place (a copy of a long run's
   * state for every report would cost more than the step); should the decision or the write
   * fail, the state is folded again from the log, which holds exactly what was committed.
   */
  private async commit(...commands: Command[]): Promise<void> {
    const now = clockNow();
    const state = this.state as RunState;
    const placeBefore = gateKey(state);
    let events: RunEvent[];
    try {
      const ctx = this.decideContext(now);
      events = transition(state, ctx, ...commands);
      if (events.length === 0) return;
      const gate = placeBefore === gateKey(state) ? null : gateView(state, toRun(state));
      this.persist(state, events, ctx, gate);
    } catch (err) {
      this.state = reduce(this.log.after(0));
      throw err;
    }
    await this.afterCommit(events);
  }

  /**
   * Appends the events and the side effects they cause — queue sends, the archive sync of a
   * finished run, the gate's new view — in one transaction, then adopts the new state.
   */
  private persist(
    work: RunState,
    events: RunEvent[],
    ctx: DecideContext,
    gate: ReturnType<typeof gateView> | null,
    gateArchives = false,
  ): void {
    const { now } = ctx;
    const messages: StepMessage[] = [];
    for (const e of events) {
      const moved = transitionOf(e);
      if (moved?.transition !== "dispatched" || e.data?.inline === true) continue;
      const task = taskName(moved.ref);
      // Checked once every event is applied: no grant for an attempt this commit superseded.
      const grant = messageGrant(work, moved.ref, e.attempt as number, ctx);
      messages.push({
        run_id: work.runId,
        tenant: work.tenant,
        step_number: moved.ref.step,
        attempt: e.attempt as number,
        ...(work.traceId ? { trace_id: work.traceId } : {}),
        ...(task ? { task } : {}),
        ...(grant ? { grant } : {}),
      });
    }
    const created = events.some((e) => e.type === "run.created");
    let handed = gateArchives;
    this.write(() => {
      this.log.append(events);
      if (messages.length > 0) this.outbox.add("enqueue", { messages }, now);
      // At creation the gate heard synchronously (`open`). The view that finishes the run carries
      // its archive, which the gate writes to D1 with others (no archive message of its own).
      if (gate && !created) {
        const archive =
          gate.place === "finished" ? fittingJson(snapshotOf(work, toRun(work), this.log.after(0))) : null;
        handed = archive !== null;
        this.outbox.add("gate", { view: gate as unknown as Json, ...(archive ? { archive } : {}) }, now);
      }
    });
    this.state = work;
    // D1 learns of a run when it finishes (the gate lists it until then), and again whenever a
    // finished run's log grows. The finishing commit hands the archive to the gate (above) when it
    // fits; otherwise, and for a log that grows later, an archive message is sent from memory after
    // the commit, stored only should the send fail. Either way the purge alarm is the net (it finds
    // D1 without the run and syncs it before the storage goes), so a run finished in its POST
    // writes no outbox row at all.
    if (isFinished(work) && !handed) this.syncDue = true;
  }

  /** One transaction of the run's storage, which also deletes the outbox rows carried out since the last. */
  private write(body: () => void): void {
    try {
      this.ctx.storage.transactionSync(() => {
        this.outbox.tidy();
        body();
      });
    } catch (err) {
      this.outbox.rolledBack();
      throw err;
    }
    this.outbox.committed();
  }

  /** Side effects of committed events, in an order that keeps watchers' streams gap-free. */
  private async afterCommit(events: RunEvent[]): Promise<void> {
    logEvents(this.env, this.state as RunState, events);
    const terminal = events.some((e) => TERMINAL_RUN_EVENTS.has(e.type));
    broadcast(this.ctx.getWebSockets(), events, terminal);
    // The side effects are durable in the outbox already: the caller (an API request, a
    // consumer's report) need not wait for them. The alarm retries whatever fails.
    this.ctx.waitUntil(this.rearm(true));
    this.ctx.waitUntil(this.flushOutbox().then(() => this.rearm()));
  }

  /** Carries out due outbox items; a concurrent caller waits for the flush already running. */
  private flushOutbox(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      do {
        this.flushAgain = false;
        if (this.syncDue) await this.syncArchive();
        for (const item of this.outbox.due(clockNow())) await this.deliver(item);
      } while (this.flushAgain);
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async deliver(item: OutboxItem): Promise<void> {
    const state = this.state as RunState;
    try {
      if (item.kind === "gate") {
        const { view, archive } = item.payload as unknown as { view: ReturnType<typeof gateView>; archive?: string };
        await gateStub(this.env, state.tenant).update(state.runId, view, this.maxWaiting, archive);
        this.outbox.done(item.id);
        return;
      }
      if (item.kind === "sync") {
        await this.sendSnapshot();
        this.outbox.done(item.id);
        return;
      }
      // Only attempts still waiting for a consumer: after a restart, an item sent before it may
      // still be here (its row goes with the next write), and its attempts may have started since.
      const messages = (item.payload as unknown as { messages: StepMessage[] }).messages.filter((m) => {
        const ref = parseTask(m.step_number, m.task);
        return ref !== null && awaitsConsumer(state, ref, m.attempt);
      });
      if (messages.length === 0) {
        this.outbox.done(item.id);
        return;
      }
      faultInjector()?.beforeEnqueue?.(messages);
      await this.env.STEPS.sendBatch(messages.map((body) => ({ body, contentType: "json" as const })));
      this.outbox.done(item.id);
    } catch (err) {
      const retryAt = this.outbox.failed(item.id, clockNow(), String(err));
      log("error", `${item.kind} failed; will retry from the outbox`, {
        run_id: state.runId,
        tenant: state.tenant,
        trace_id: state.traceId,
        attempt: item.attempts + 1,
        retry_at: new Date(retryAt).toISOString(),
        error: err,
      });
    }
  }

  /**
   * Asks the archive to copy the run to D1. Done once sent: the queue retries the write, and
   * before the storage goes the purge checks that D1 holds it.
   */
  private async sendSnapshot(): Promise<void> {
    const state = this.state as RunState;
    faultInjector()?.beforeArchiveSend?.(state.runId);
    const snapshot = await this.snapshot();
    const inline = snapshot !== null && fittingJson(snapshot) !== null;
    await this.env.ARCHIVE.send(
      { run_id: state.runId, tenant: state.tenant, seq: state.seq, ...(inline ? { snapshot } : {}) },
      { contentType: "json" },
    );
  }

  /** The sync a commit of a finished run asks for; only a failed send is stored, to be retried from the outbox. */
  private async syncArchive(): Promise<void> {
    this.syncDue = false;
    const state = this.state as RunState;
    try {
      await this.sendSnapshot();
    } catch (err) {
      const retryAt = clockNow() + outboxDelay(1);
      this.write(() => this.outbox.add("sync", { seq: state.seq }, retryAt));
      log("error", "sync failed; will retry from the outbox", {
        run_id: state.runId,
        tenant: state.tenant,
        trace_id: state.traceId,
        retry_at: new Date(retryAt).toISOString(),
        error: err,
      });
    }
  }

  /** When a finished run's storage may go: its retention after completion (or the next check, if D1 lacked it). */
  private purgeAt(): number | null {
    const s = this.state;
    if (!s || !isFinished(s) || !s.completedAt) return null;
    return Math.max(Date.parse(s.completedAt) + this.retentionMs, Number(this.log.meta(PURGE_RETRY_AT) ?? 0));
  }

  /** Whether D1 holds the finished run's archive up to its last event: the condition to delete its storage. */
  private archived(): Promise<boolean> {
    const s = this.state as RunState;
    return archivedUpTo(database(this.env.DB), s.tenant, s.runId, s.seq);
  }

  /** Deletes the run's storage; reads of the run are then served from the D1 archive. */
  private async purge(): Promise<void> {
    const runId = this.state?.runId;
    await this.erase();
    log("info", "run storage deleted after retention; served from D1 from now on", { run_id: runId });
  }

  /** Deletes the run's storage and forgets it: the object holds nothing, as before its first commit. */
  private async erase(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.armed = null;
    this.state = null;
    this.syncDue = false;
    this.tables.reset();
    this.outbox.reset();
  }

  /**
   * Keeps the single alarm at or before the earliest deadline, retry, wake-up, pending side effect
   * or purge. It is a storage write, so it is moved only when it must be:
   * - An alarm already set earlier stays. Waking early costs one alarm that finds nothing due and
   *   re-arms; moving the alarm at every step (each attempt's deadline is later than the last)
   *   would cost a write per step.
   * - Right after a commit, whose outbox is being carried out this very moment, pending side
   *   effects only need a safety net in case the object dies before they are sent: an alarm
   *   within `OUTBOX_SAFETY_MS` will do (an alarm already set, or the next deadline, such as a
   *   dispatched step's), else one is set `OUTBOX_GRACE_MS` ahead — and moved to the real next
   *   wake-up once the side effects went out, so a healthy commit does not wake the object
   *   again. A finished run's archive sync has the purge alarm as its net.
   * - A finished run with nothing pending moves an earlier alarm to its purge at once: left,
   *   it would wake the object at a deadline that no longer exists only to move on.
   */
  private rearm(flushing = false): Promise<void> {
    const now = clockNow();
    const pending = this.outbox.nextAt();
    const purge = this.purgeAt();
    const wake = [this.state ? nextWake(this.state) : null, purge, flushing ? null : pending].filter(
      (t): t is number => t !== null,
    );
    const exact = wake.length === 0 ? null : Math.min(...wake);
    // An archive sync needs no net of its own: the purge alarm finds D1 without the run and
    // syncs again before any storage goes (so a run finished in its POST writes one alarm).
    const safetyNet = flushing && pending !== null && !(purge !== null && this.outbox.onlyOf("sync"));
    const armed = this.armed;
    if (typeof armed === "number") {
      const needBy = safetyNet ? Math.min(exact ?? Infinity, now + OUTBOX_SAFETY_MS) : exact;
      // An earlier alarm that stands for nothing once nothing is pending moves to the real wake-up:
      // a net whose side effects went out, or any alarm of a finished run (no step comes to move
      // it later, so it would only wake the object to find nothing due).
      const stray =
        pending === null &&
        armed < (exact ?? Infinity) &&
        (this.armedAsNet || (this.state !== null && isFinished(this.state)));
      if (needBy !== null && armed <= needBy && !stray) return Promise.resolve();
    }
    // A deadline within the net's reach (a dispatched step's) is a net already.
    const net = safetyNet && !(exact !== null && exact <= now + OUTBOX_SAFETY_MS);
    const at = net ? Math.min(exact ?? Infinity, Math.max(pending ?? now, now + OUTBOX_GRACE_MS)) : exact;
    if (at === armed) return Promise.resolve();
    this.armed = at;
    this.armedAsNet = net && at !== exact;
    if (counting(this.env)) count("do_rows_written");
    // Not awaited by callers on a request's path: the write is ordered before any message the
    // object sends after it (the output gate), which is all a safety net needs.
    return at === null ? this.ctx.storage.deleteAlarm() : this.ctx.storage.setAlarm(at);
  }
}
