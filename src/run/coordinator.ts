import { DurableObject } from "cloudflare:workers";
import { problemResponse } from "../api/problem";
import type { Plan } from "../contracts/plan";
import type { PlannerChoice, Run, RunEvent, RunOptions } from "../contracts/run";
import type { StepMessage } from "../contracts/tool";
import type { Env } from "../env";
import { PlanValidationError, validatePlan } from "../plan/validate";
import { plan as planPrompt } from "../planner";
import { defaultRegistry } from "../tools/registry";
import { DEFAULT_RETRY } from "../tools/types";
import {
  type AttemptGrant,
  type AttemptOutcome,
  type DecideContext,
  nextWake,
  onCancel,
  onResult,
  onStart,
  onTimeouts,
} from "./decide";
import { EventLog } from "./event-log";
import { type EventDraft, TERMINAL_RUN_EVENTS } from "./events";
import { broadcast, closeNormally, LIVE_SUBPROTOCOL, MAX_WATCHERS_PER_RUN, send } from "./live";
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

/**
 * One run: its event log, its state (a fold of the log), dispatch of ready steps through the
 * queue, acceptance of results, the watchdog alarm and live WebSockets. Every command follows
 * one pattern: decide events (pure, `decide.ts`), append them in one transaction, then do the
 * side effects (broadcast, alarm, enqueue).
 */
export class RunCoordinator extends DurableObject<Env> implements RunApi {
  private readonly log: EventLog;
  private state: RunState | null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.log = new EventLog(ctx.storage.sql);
    // SQLite storage is synchronous: the state is rebuilt before any request is delivered.
    this.state = reduce(this.log.after(0));
  }

  /** Creates and plans the run, then dispatches its first steps. Idempotent: a second call returns the run. */
  async create(cmd: CreateRunCommand): Promise<Run> {
    if (this.state) return toRun(this.state);
    const now = Date.now();
    const created: RunEvent = {
      seq: 1,
      type: "run.created",
      at: new Date(now).toISOString(),
      data: {
        run_id: cmd.runId,
        tenant: cmd.tenant,
        prompt: cmd.prompt,
        planner: cmd.planner,
        options: cmd.options,
        trace_id: cmd.traceId,
      },
    };
    const work = initial(created);
    const events = [created, ...transition(work, this.decideContext(now), (s) => this.planEvents(s, cmd))];
    this.persist(work, events);
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

  async cancel(reason: string): Promise<CancelResult> {
    if (!this.state) return { outcome: "not_found" };
    if (isFinished(this.state)) return { outcome: "finished", run: toRun(this.state) };
    await this.commit((s) => onCancel(s, reason));
    return { outcome: "cancelled", run: toRun(this.state) };
  }

  /** The watchdog: times out attempts past their deadline and dispatches retries that are due. */
  override async alarm(): Promise<void> {
    if (!this.state) return;
    await this.commit((s, ctx) => onTimeouts(s, ctx));
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
    const afterParam = new URL(request.url).searchParams.get("after");
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    // Everything below runs without an await, so no event can slip between snapshot and replay.
    send(server, { type: "snapshot", run: toRun(this.state), seq: this.state.seq });
    if (afterParam !== null) {
      for (const event of this.log.after(Number(afterParam))) send(server, { type: "event", event });
    }
    if (isFinished(this.state)) closeNormally(server);
    const offered = request.headers.get("Sec-WebSocket-Protocol") ?? "";
    const headers = new Headers();
    if (offered.split(",").some((p) => p.trim() === LIVE_SUBPROTOCOL)) {
      headers.set("Sec-WebSocket-Protocol", LIVE_SUBPROTOCOL);
    }
    return new Response(null, { status: 101, webSocket: client, headers });
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
    };
  }

  private planEvents(state: RunState, cmd: CreateRunCommand): EventDraft[] {
    if (cmd.plan) return [{ type: "run.planned", data: { plan: cmd.plan } }];
    try {
      const outcome = planPrompt(state.prompt, cmd.planner);
      const plan = validatePlan(outcome.plan, defaultRegistry, {
        planId: crypto.randomUUID(),
        planner: outcome.planner,
        finalGoal: outcome.plan.final_goal ?? state.prompt,
      });
      return [{ type: "run.planned", data: { plan, ...(outcome.note ? { note: outcome.note } : {}) } }];
    } catch (err) {
      const error =
        err instanceof PlanValidationError
          ? `Could not parse prompt: the planned steps are invalid (${err.issues.map((i) => `${i.path}: ${i.message}`).join("; ")})`
          : err instanceof Error
            ? err.message
            : String(err);
      return [{ type: "run.failed", data: { error } }];
    }
  }

  private async commit(first: (s: RunState, ctx: DecideContext) => EventDraft[]): Promise<RunEvent[]> {
    const work = structuredClone(this.state as RunState);
    const events = transition(work, this.decideContext(Date.now()), first);
    if (events.length === 0) return events;
    this.persist(work, events);
    await this.afterCommit(events);
    return events;
  }

  private persist(work: RunState, events: RunEvent[]): void {
    this.ctx.storage.transactionSync(() => this.log.append(events));
    this.state = work;
  }

  /** Side effects of committed events, in an order that keeps watchers' streams gap-free. */
  private async afterCommit(events: RunEvent[]): Promise<void> {
    const state = this.state as RunState;
    const terminal = events.some((e) => TERMINAL_RUN_EVENTS.has(e.type));
    broadcast(this.ctx.getWebSockets(), events, terminal);

    const wake = nextWake(state);
    if (wake === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(wake);

    const messages = events
      .filter((e) => e.type === "step.dispatched")
      .map((e) => ({
        body: {
          run_id: state.runId,
          tenant: state.tenant,
          step_number: e.step_number as number,
          attempt: e.attempt as number,
          ...(state.traceId ? { trace_id: state.traceId } : {}),
        } satisfies StepMessage,
        contentType: "json" as const,
      }));
    if (messages.length === 0) return;
    try {
      await this.env.STEPS.sendBatch(messages);
    } catch (err) {
      // The attempts stay on record with a deadline: the alarm times them out and dispatches
      // new attempts, so a failed send delays the run but never loses a step.
      console.log(
        JSON.stringify({
          level: "error",
          msg: "enqueue failed",
          run_id: state.runId,
          tenant: state.tenant,
          error: String(err),
        }),
      );
    }
  }
}
