import { ARCHIVE_QUEUE, handleArchiveBatch } from "../archive/consumer";
import { BreakerClient } from "../breaker/breaker";
import { healthSignal } from "../breaker/state";
import { intVar } from "../config";
import { type StepMessage, stepMessageSchema } from "../contracts/tool";
import type { Env } from "../env";
import { faultInjector, type MessageFault } from "../faults";
import { newSpanId } from "../observability/ids";
import { log, logger } from "../observability/log";
import { recordStep } from "../observability/metrics";
import type { AttemptAsk, AttemptReport, RunApi } from "../run/api";
import { runStub } from "../run/stub";
import { defaultRegistry } from "../tools/registry";
import { runTool } from "../tools/run";
import { type AttemptGrant, type AttemptOutcome, isPure } from "../tools/types";
import { runTurn } from "./agent-turn";
import { batcher } from "./batcher";
import { coalesce } from "./deltas";
import { DEFAULT_TENANT_SHARE, FAIR_SHARE_WAIT_MS, Fairness } from "./fairness";

/** The dead-letter queue of `crane-steps` (wrangler.toml): messages the queue gave up on. */
export const STEPS_DLQ = "crane-steps-dlq";
type WaitUntil = (p: Promise<unknown>) => void;

/** Redelivery delay after a consumer failure; the queue's own default would be immediate. */
const RETRY_DELAY_SECONDS = 1;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Steps in flight per tenant in this isolate: one tenant's flood never takes the whole consumer. */
const fairness = new Fairness();

function parse(message: Message<unknown>): StepMessage | null {
  const parsed = stepMessageSchema.safeParse(message.body);
  if (parsed.success) return parsed.data;
  log("error", "dropped malformed step message", { message_id: message.id, error: parsed.error.message });
  message.ack();
  return null;
}

/** Runs a granted attempt: a model turn of an agent, or a tool behind its tenant's circuit breaker. */
async function execute(
  env: Env,
  body: StepMessage,
  grant: AttemptGrant,
  fault: MessageFault,
  waitUntil: WaitUntil,
  onDelta: (text: string, reset?: boolean) => void,
  stop?: AbortSignal,
): Promise<AttemptOutcome> {
  const ctx = {
    tenant: body.tenant,
    runId: body.run_id,
    stepNumber: body.step_number,
    attempt: body.attempt,
    env,
    onDelta,
  };
  if (grant.turn !== undefined) return runTurn(env, body.tenant, grant, onDelta);
  const admission = await BreakerClient.admit(env, body.tenant, grant.tool_name, waitUntil);
  if (!admission.allow) {
    return {
      ok: false,
      error: {
        message: `Circuit breaker for ${grant.tool_name} is open`,
        retryable: true,
        code: "circuit_open",
        retry_after_ms: admission.retryAfterMs,
      },
    };
  }
  const outcome: AttemptOutcome = fault.failTool
    ? { ok: false, error: { message: "injected fault: upstream unavailable", retryable: true, code: "transient" } }
    : await runTool(defaultRegistry, grant, ctx, fault.hangMs, stop);
  waitUntil(BreakerClient.report(env, body.tenant, grant.tool_name, healthSignal(outcome), admission.probe));
  return outcome;
}

/**
 * Handles one queue message: one attempt of one task. The coordinator decides whether the
 * attempt may run (a stale or duplicate delivery gets no grant and is acked); the outcome goes
 * back by RPC. A failure to reach the coordinator retries the message (at-least-once delivery);
 * the coordinator's attempt check keeps the outcome exactly-once.
 */
async function handleMessage(
  message: Message<unknown>,
  env: Env,
  waitUntil: WaitUntil,
  callsOf: (body: StepMessage) => RunCalls,
): Promise<void> {
  const body = parse(message);
  if (!body) return;
  const { run_id, tenant, step_number, attempt, trace_id, task } = body;
  // One span per delivery of an attempt; the trace id came with the message from the API request.
  const log = logger({
    run_id,
    tenant,
    step_number,
    attempt,
    trace_id,
    span_id: newSpanId(),
    delivery: message.attempts,
    ...(task ? { task } : {}),
  });
  const share = intVar(env.TENANT_STEPS_PER_CONSUMER, DEFAULT_TENANT_SHARE);
  // Over the share: wait here for one of the tenant's own slots (briefly, behind a short line);
  // failing that, its turn comes after a moment through the queue — a re-send, not a retry, so
  // waiting never counts as a failed delivery. The coordinator's deadline still bounds the wait.
  if (!(await fairness.acquire(tenant, share, FAIR_SHARE_WAIT_MS))) {
    try {
      await env.STEPS.send(
        { ...body, deferred: Math.min(1000, (body.deferred ?? 0) + 1) },
        { contentType: "json", delaySeconds: 1 },
      );
      message.ack();
    } catch (err) {
      log.error("could not defer a step message; the queue will redeliver it", { error: err });
      message.retry({ delaySeconds: RETRY_DELAY_SECONDS });
    }
    return;
  }
  try {
    const fault: MessageFault = faultInjector()?.onMessage?.(body, message.attempts) ?? {};
    if (fault.drop) {
      message.ack();
      return;
    }
    if (fault.duplicate) await env.STEPS.send(body, { contentType: "json" });
    if (fault.throwBeforeStart) throw new Error("injected fault: consumer crashed on arrival");
    const calls = callsOf(body);
    const ask = async () => {
      if (fault.holdStart) await fault.holdStart;
      return calls.start({ step_number, attempt, ...(task ? { task } : {}) });
    };
    // A side-effect-free tool's attempt comes granted (running a stale one changes nothing): a
    // pure tool's is not asked for at all (one report starts and ends it), a slower one's start is
    // recorded while it runs. Any other attempt runs only once the coordinator granted it.
    const given: AttemptGrant | null = body.grant ? { ...body.grant, trace_id: trace_id ?? null } : null;
    const once = given !== null && isPure(defaultRegistry.get(given.tool_name));
    const starting = given && !once ? ask() : null;
    // A start refused while the tool runs (the run was cancelled, the attempt is stale) stops it.
    const stop = new AbortController();
    starting?.then(
      (granted) => granted || stop.abort(),
      () => {}, // awaited below, after the tool ran
    );
    const grant = given ?? (await ask());
    const notGranted = () => {
      log.info("attempt not granted (stale, duplicate or cancelled)");
      message.ack();
    };
    if (!grant) return notGranted();
    if (fault.throwBeforeTool) throw new Error("injected fault: consumer crashed before the tool ran");
    const started = Date.now();
    const deltas = coalesce((text, reset) => calls.stub.delta(step_number, attempt, task, text, reset));
    const outcome = await execute(env, body, grant, fault, waitUntil, deltas.push, stop.signal);
    await deltas.flush();
    fault.afterTool?.();
    if (starting && !(await starting)) return notGranted();
    if (fault.throwAfterTool) throw new Error("injected fault: consumer crashed after the tool ran");
    if (fault.delayReportMs) await sleep(fault.delayReportMs);
    if (fault.holdReport) await fault.holdReport;
    await calls.report({ step_number, attempt, ...(task ? { task } : {}), outcome, ...(once ? { ran: true } : {}) });
    const duration_ms = Date.now() - started;
    if (outcome.ok) log.debug("step attempt succeeded", { tool: grant.tool_name, duration_ms });
    else log.warn("step attempt failed", { tool: grant.tool_name, duration_ms, error: outcome.error });
    recordStep(env, {
      tenant,
      tool: grant.tool_name,
      outcome: outcome.ok ? "succeeded" : outcome.error.code,
      runId: run_id,
      durationMs: duration_ms,
      attempt,
      kind: task?.split(":")[0] ?? "step",
    });
    message.ack();
  } catch (err) {
    log.error("step message failed; the queue will redeliver it", { error: err });
    message.retry({ delaySeconds: RETRY_DELAY_SECONDS });
  } finally {
    fairness.leave(tenant);
  }
}

/**
 * A run's starts and reports from one batch: those made close together go to its coordinator in
 * one call and one commit (the three steps of a fan-out start together, and report together when
 * they end together), never waiting longer than the call before them (`batcher`).
 */
interface RunCalls {
  /** The run's coordinator (one stub for all of the run's messages in the batch). */
  stub: RunApi;
  start: (ask: AttemptAsk) => Promise<AttemptGrant | null>;
  report: (report: AttemptReport) => Promise<void>;
}

function runCalls(stub: RunApi, messages: number): RunCalls {
  // A run's only message in the batch (a chain's next step) has nothing to gather: no wait at all.
  if (messages === 1) {
    return {
      stub,
      start: async (ask) => (await stub.startAttempts([ask]))[0] ?? null,
      report: (report) => stub.reportAttempts([report]),
    };
  }
  return {
    stub,
    start: batcher((asks: AttemptAsk[]) => stub.startAttempts(asks)),
    report: batcher(async (reports: AttemptReport[]) => {
      await stub.reportAttempts(reports);
      return reports.map(() => undefined);
    }),
  };
}

/** A message the queue gave up on (after `max_retries`) is recorded on its run, never silently lost. */
async function handleDeadLetter(message: Message<unknown>, env: Env): Promise<void> {
  const body = parse(message);
  if (!body) return;
  const fields = {
    run_id: body.run_id,
    tenant: body.tenant,
    step_number: body.step_number,
    attempt: body.attempt,
    trace_id: body.trace_id,
    ...(body.task ? { task: body.task } : {}),
  };
  try {
    await runStub(env, body.tenant, body.run_id).deadLetter(
      body.step_number,
      body.attempt,
      `delivery failed ${message.attempts} time(s) on ${STEPS_DLQ}'s source queue`,
      body.task,
    );
    log("warn", "dead-lettered step recorded on its run", fields);
    message.ack();
  } catch (err) {
    log("error", "could not record a dead-lettered step; will retry", { ...fields, error: err });
    message.retry({ delaySeconds: RETRY_DELAY_SECONDS });
  }
}

/** The Worker's `queue()` handler for every queue it consumes; step messages of a batch run concurrently. */
export async function handleQueueBatch(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
  if (batch.queue === ARCHIVE_QUEUE) return handleArchiveBatch(batch, env);
  const waitUntil: WaitUntil = (p) =>
    ctx.waitUntil(p.catch((err: unknown) => log("warn", "background update failed", { error: err })));
  if (batch.queue === STEPS_DLQ) {
    await Promise.all(batch.messages.map((m) => handleDeadLetter(m, env)));
    return;
  }
  const runKey = (body: unknown) => {
    const b = body as { tenant?: unknown; run_id?: unknown } | null;
    return `${String(b?.tenant)}:${String(b?.run_id)}`;
  };
  const perRun = new Map<string, number>();
  for (const m of batch.messages) perRun.set(runKey(m.body), (perRun.get(runKey(m.body)) ?? 0) + 1);
  const calls = new Map<string, RunCalls>();
  const callsOf = (body: StepMessage) => {
    const key = runKey(body);
    let c = calls.get(key);
    if (!c) {
      c = runCalls(runStub(env, body.tenant, body.run_id), perRun.get(key) ?? 1);
      calls.set(key, c);
    }
    return c;
  };
  await Promise.all(batch.messages.map((m) => handleMessage(m, env, waitUntil, callsOf)));
}
