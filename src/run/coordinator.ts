import { DurableObject } from "cloudflare:workers";
import { problemResponse } from "../api/problem";
import { intVar } from "../config";
import type { Plan } from "../contracts/plan";
import type { PlannerChoice, Run, RunEvent, RunOptions } from "../contracts/run";
import type { StepMessage } from "../contracts/tool";
import type { Env } from "../env";
import { runInline } from "../executor/run-tool";
import { faultInjector } from "../faults";
import { log, setLogLevel } from "../observability/log";
import { gateStub } from "../tenancy/gate";
import { defaultRegistry } from "../tools/registry";
import { DEFAULT_RETRY } from "../tools/types";
import {
  type AttemptGrant,
  type AttemptOutcome,
  DEFAULT_GRACE,
  type DecideContext,
  type Grace,
  nextWake,
  onCancel,
  onDeadLetter,
  onResult,
  onStart,
  onTimeouts,
} from "./decide";
import { EventLog } from "./event-log";
import { type EventDraft, TERMINAL_RUN_EVENTS } from "./events";
import { broadcast, MAX_WATCHERS_PER_RUN, openStream } from "./live";
import { logEvents } from "./log-events";
import { Outbox, type OutboxItem } from "./outbox";
import { createdEvent, planRun } from "./planning";
import type { RunSnapshot } from "./snapshot";
import { initial, isFinished, type RunState, reduce } from "./state";
import type { RunApi } from "./stub";
import { transition } from "./transition";
import { toRun } from "./view";

export interface CreateRunCommand {
  runId: string;
  tenant: string;
  prompt: string;
  planner: PlannerChoice;
  options: RunOptions;
  /** An explicit plan, already validated by the API (invalid ones never reach a coordinator). */
  plan: Plan | null;
  traceId: string | null;
}

export type CancelResult = { outcome: "not_found" } | { outcome: "finished" | "cancelled"; run: Run };

/** Default time a finished, archived run keeps its Durable Object storage. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** A sync sent to the archive queue but not confirmed within this time is sent again. */
const SYNC_CONFIRM_MS = 5 * 60 * 1000;
const ARCHIVED_SEQ = "archived_seq";

/**
 * One run: its event log, its state (a fold of the log), dispatch of ready steps through the
 * queue, acceptance of results, the watchdog alarm and live WebSockets. Every command follows
 * one pattern: decide events (pure, `decide.ts`), append them and the side effects they cause
 * (outbox) in one transaction, then carry the side effects out (broadcast, enqueue, alarm).
 */
export class RunCoordinator extends DurableObject<Env> implements RunApi {
  private log: EventLog;
  private outbox: Outbox;
  private readonly grace: Grace;
  private readonly retentionMs: number;
  /** Run pure tools (calculator, text) inside the coordinator instead of through the queue. */
  private readonly inline: boolean;
  private state: RunState | null;
  private flushing: Promise<void> | null = null;
  private creating: Promise<Run> | null = null;
  private flushAgain = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    setLogLevel(env.LOG_LEVEL);
    this.log = new EventLog(ctx.storage.sql);
    this.outbox = new Outbox(ctx.storage.sql);
    this.grace = {
      dispatchMs: intVar(env.WATCHDOG_DISPATCH_GRACE_MS, DEFAULT_GRACE.dispatchMs, 0),
      reportMs: intVar(env.WATCHDOG_REPORT_GRACE_MS, DEFAULT_GRACE.reportMs, 0),
    };
    this.retentionMs = intVar(env.RUN_RETENTION_MS, DEFAULT_RETENTION_MS, 0);
    this.inline = env.INLINE_PURE_TOOLS !== "false";
    // SQLite storage is synchronous: the state is rebuilt before any request is delivered.
    this.state = reduce(this.log.after(0));
    // An unfinished run always has an alarm; re-arm it should one have been lost.
    ctx.blockConcurrencyWhile(async () => {
      if ((await ctx.storage.getAlarm()) === null) await this.rearm();
    });
  }

  /** Creates and plans the run, then dispatches its first steps. Idempotent: a second call returns the run. */
  async create(cmd: CreateRunCommand): Promise<Run> {
    if (this.state) return toRun(this.state);
    // Planning may wait on an LLM; a second create (an idempotent replay) waits for the first.
    this.creating ??= this.createOnce(cmd).finally(() => {
      this.creating = null;
    });
    return this.creating;
  }

  private async createOnce(cmd: CreateRunCommand): Promise<Run> {
    const planned = await planRun(cmd, this.env, defaultRegistry, (p) => this.ctx.waitUntil(p));
    const now = Date.now();
    const created = createdEvent(cmd, now);
    const work = initial(created);
    const events = [created, ...transition(work, this.decideContext(now), () => planned)];
    this.persist(work, events, now);
    await this.afterCommit(events);
    return toRun(work);
  }

  async get(): Promise<Run | null> {
    return this.state ? toRun(this.state) : null;
  }

  async events(after: number, limit: number): Promise<RunEvent[] | null> {
    return this.state ? this.log.after(after, limit) : null;
  }

  /** A consumer asks to run an attempt; the answer is null for a stale, duplicate or cancelled one. */
  async startAttempt(stepNumber: number, attempt: number): Promise<AttemptGrant | null> {
    if (!this.state) return null;
    let grant: AttemptGrant | null = null;
    await this.commit((s, ctx) => {
      const decision = onStart(s, stepNumber, attempt, ctx);
      grant = decision.grant;
      return decision.drafts;
    });
    return grant;
  }

  /** A consumer reports an attempt's outcome. */
  async finishAttempt(stepNumber: number, attempt: number, outcome: AttemptOutcome): Promise<void> {
    if (!this.state) return;
    await this.commit((s, ctx) => onResult(s, stepNumber, attempt, outcome, ctx));
  }

  /** The dead-letter consumer reports a message the queue gave up on. */
  async deadLetter(stepNumber: number, attempt: number, reason: string): Promise<void> {
    if (!this.state) return;
    await this.commit((s, ctx) => onDeadLetter(s, stepNumber, attempt, reason, ctx));
  }

  async cancel(reason: string): Promise<CancelResult> {
    if (!this.state) return { outcome: "not_found" };
    if (isFinished(this.state)) return { outcome: "finished", run: toRun(this.state) };
    await this.commit((s) => onCancel(s, reason));
    return { outcome: "cancelled", run: toRun(this.state) };
  }

  /** What the archive copies to D1: the run as served, plus the whole log once it finished. */
  async snapshot(): Promise<RunSnapshot | null> {
    const s = this.state;
    if (!s) return null;
    const finished = isFinished(s);
    return {
      tenant: s.tenant,
      run: toRun(s),
      planner: s.plan?.planner ?? null,
      seq: s.seq,
      finished,
      events: finished ? this.log.after(0) : null,
    };
  }

  /** The archive confirms that D1 holds the snapshot up to `seq`. */
  async synced(seq: number): Promise<void> {
    if (!this.state) return;
    this.outbox.confirmSync(seq);
    if (isFinished(this.state)) {
      const archived = Math.max(seq, Number(this.log.meta(ARCHIVED_SEQ) ?? 0));
      this.log.setMeta(ARCHIVED_SEQ, String(archived));
    }
    await this.rearm();
  }

  /**
   * The watchdog: times out attempts past their deadline, dispatches due retries, retries
   * failed side effects, and deletes a finished run's storage once its retention has passed.
   */
  override async alarm(): Promise<void> {
    if (!this.state) return;
    const purgeAt = this.purgeAt();
    if (purgeAt !== null && Date.now() >= purgeAt) {
      await this.purge();
      return;
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
    const after = new URL(request.url).searchParams.get("after");
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    return openStream(request, client, server, {
      run: toRun(this.state),
      seq: this.state.seq,
      replay: after === null ? [] : this.log.after(Number(after)),
      finished: isFinished(this.state),
    });
  }

  // No webSocketClose handler: from compatibility date 2026-04-07 the runtime answers a
  // client's Close frame itself (web_socket_auto_reply_to_close).
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // The stream is one-way; a client may ping to keep intermediaries from timing it out.
    if (message === "ping") ws.send("pong");
  }

  private decideContext(now: number): DecideContext {
    return {
      now,
      random: Math.random,
      policyFor: (tool) => defaultRegistry.get(tool)?.retry ?? DEFAULT_RETRY,
      grace: this.grace,
      ...(this.inline
        ? {
            canInline: (tool: string) => defaultRegistry.get(tool)?.executeInline !== undefined,
            runInline: (grant: AttemptGrant) => runInline(defaultRegistry, grant),
          }
        : {}),
    };
  }

  private async commit(first: (s: RunState, ctx: DecideContext) => EventDraft[]): Promise<void> {
    const now = Date.now();
    const work = structuredClone(this.state as RunState);
    const events = transition(work, this.decideContext(now), first);
    if (events.length === 0) return;
    this.persist(work, events, now);
    await this.afterCommit(events);
  }

  /** Appends the events and the queue sends they cause in one transaction, then adopts the new state. */
  private persist(work: RunState, events: RunEvent[], now: number): void {
    const messages = events
      .filter((e) => e.type === "step.dispatched" && e.data?.inline !== true)
      .map(
        (e): StepMessage => ({
          run_id: work.runId,
          tenant: work.tenant,
          step_number: e.step_number as number,
          attempt: e.attempt as number,
          ...(work.traceId ? { trace_id: work.traceId } : {}),
        }),
      );
    // D1 learns of a run when it is created and again whenever a finished run's log grows.
    const sync = isFinished(work) || events.some((e) => e.type === "run.created");
    const ended = events.some((e) => TERMINAL_RUN_EVENTS.has(e.type));
    this.ctx.storage.transactionSync(() => {
      this.log.append(events);
      if (messages.length > 0) this.outbox.add("enqueue", { messages }, now);
      if (sync) this.outbox.add("sync", { seq: work.seq }, now);
      if (ended) this.outbox.add("release", {}, now);
    });
    this.state = work;
  }

  /** Side effects of committed events, in an order that keeps watchers' streams gap-free. */
  private async afterCommit(events: RunEvent[]): Promise<void> {
    logEvents(this.env, this.state as RunState, events);
    const terminal = events.some((e) => TERMINAL_RUN_EVENTS.has(e.type));
    broadcast(this.ctx.getWebSockets(), events, terminal);
    // The side effects are durable in the outbox already: the caller (an API request, a
    // consumer's report) need not wait for them. The alarm retries whatever fails.
    await this.rearm();
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
        for (const item of this.outbox.due(Date.now())) await this.deliver(item);
      } while (this.flushAgain);
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async deliver(item: OutboxItem): Promise<void> {
    try {
      if (item.kind === "release") {
        const state = this.state as RunState;
        await gateStub(this.env, state.tenant).releaseRun(state.runId);
        this.outbox.done(item.id);
        return;
      }
      if (item.kind === "sync") {
        const { seq } = item.payload as { seq: number };
        const state = this.state as RunState;
        await this.env.ARCHIVE.send({ run_id: state.runId, tenant: state.tenant, seq }, { contentType: "json" });
        // Kept until the archive confirms (`synced`); sent again if that never comes.
        this.outbox.postpone(item.id, Date.now() + SYNC_CONFIRM_MS);
        return;
      }
      const { messages } = item.payload as unknown as { messages: StepMessage[] };
      faultInjector()?.beforeEnqueue?.(messages);
      await this.env.STEPS.sendBatch(messages.map((body) => ({ body, contentType: "json" as const })));
      this.outbox.done(item.id);
    } catch (err) {
      const retryAt = this.outbox.failed(item.id, Date.now(), String(err));
      log("error", `${item.kind} failed; will retry from the outbox`, {
        run_id: this.state?.runId,
        tenant: this.state?.tenant,
        trace_id: this.state?.traceId,
        attempt: item.attempts + 1,
        retry_at: new Date(retryAt).toISOString(),
        error: err,
      });
    }
  }

  /** When a finished run's storage may go: its retention after completion, once D1 holds all of it. */
  private purgeAt(): number | null {
    const s = this.state;
    if (!s || !isFinished(s) || !s.completedAt) return null;
    if (Number(this.log.meta(ARCHIVED_SEQ) ?? 0) < s.seq) return null;
    return Date.parse(s.completedAt) + this.retentionMs;
  }

  /** Deletes the run's storage; reads of the run are then served from the D1 archive. */
  private async purge(): Promise<void> {
    const runId = this.state?.runId;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.state = null;
    this.log = new EventLog(this.ctx.storage.sql);
    this.outbox = new Outbox(this.ctx.storage.sql);
    log("info", "run storage deleted after retention; served from D1 from now on", { run_id: runId });
  }

  /** Arms the single alarm for the earliest deadline, retry, pending side effect or purge. */
  private async rearm(): Promise<void> {
    const times = [this.state ? nextWake(this.state) : null, this.outbox.nextAt(), this.purgeAt()].filter(
      (t): t is number => t !== null,
    );
    if (times.length === 0) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(Math.min(...times));
  }
}
