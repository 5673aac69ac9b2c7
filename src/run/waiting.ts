import { type SignalIdempotency, sameBody } from "../contracts/body-hash";
import type { Json } from "../contracts/common";
import type { ApproveBody, CallbackBody, WaitingInfo } from "../contracts/waiting";
import { findReferences, resolveReferences } from "../plan/references";
import { classifyError } from "../tools/errors";
import { parseToolInput } from "../tools/input";
import { stepOutputs } from "./attempts";
import type { DecideContext } from "./context";
import type { EventDraft } from "./events";
import { isFinished, type RunState, type StepState } from "./state";
import { iso } from "./tasks";

/** A decision on a run's command: the events to append, or why the command does not fit (HTTP status). */
export type Decision<A = undefined> =
  | { ok: true; drafts: EventDraft[]; answer: A }
  | { ok: false; status: 404 | 409 | 422; detail: string };

const refuse = (status: 404 | 409 | 422, detail: string): { ok: false; status: 404 | 409 | 422; detail: string } => ({
  ok: false,
  status,
  detail,
});

/** Path of a callback URL; the token after it routes to the run's object and proves the caller holds the URL. */
export const CALLBACK_PATH = "/api/v1/callbacks/";

/** A callback token: the run's Durable Object id (so a keyless request finds the run) and a secret. */
export const callbackToken = (objectId: string, secret: string) => `${objectId}.${secret}`;

/** The object id a token routes to, or null for something that is not a token at all. */
export function objectIdOfToken(token: string): string | null {
  const m = /^([0-9a-f]{64})\.[A-Za-z0-9_-]{22,64}$/.exec(token);
  return m ? (m[1] as string) : null;
}

/** Compares two strings in time that depends only on their lengths. */
function sameToken(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * A control step starts to wait: its `step.waiting` event carries the waiting object (what the
 * Run shows, with the callback URL) and when it wakes by itself. Nothing else is held: the wait is
 * this event in the log and the object's alarm.
 */
export function beginWait(state: RunState, s: StepState, ctx: DecideContext): EventDraft[] {
  const n = s.step.step_number;
  const tool = ctx.registry.get(s.step.tool_name);
  const control = tool?.control;
  const fail = (error: string): EventDraft[] => [
    { type: "step.failed", step_number: n, attempt: 1, data: { error, code: "invalid_input", retryable: false } },
  ];
  let input: Record<string, Json>;
  try {
    input = resolveReferences(s.step.tool_input, stepOutputs(state)) as Record<string, Json>;
  } catch (err) {
    return fail(classifyError(err).message);
  }
  // Input made by references is checked now as a literal one was at validation (until ahead, ≤ 365 d).
  const resolved = findReferences(s.step.tool_input).length > 0;
  const parsed = tool
    ? parseToolInput(tool, input, resolved ? { now: ctx.now, tools: ctx.registry } : undefined)
    : null;
  if (parsed && !parsed.ok) return fail(parsed.message);
  const since = iso(ctx.now);
  const callback = () =>
    state.origin && ctx.objectId
      ? { callback_url: `${state.origin}${CALLBACK_PATH}${callbackToken(ctx.objectId, ctx.secret())}` }
      : {};
  let waiting: WaitingInfo;
  let wakeAt: number | null;
  if (control === "timer") {
    const at = typeof input.until === "string" ? Date.parse(input.until) : ctx.now + Number(input.ms);
    wakeAt = Math.max(ctx.now, at);
    waiting = { kind: "timer", since, until: iso(wakeAt) };
  } else {
    wakeAt = typeof input.timeout_ms === "number" ? ctx.now + input.timeout_ms : null;
    const until = wakeAt === null ? null : iso(wakeAt);
    waiting =
      control === "approval"
        ? { kind: "approval", since, until, message: String(input.message), ...callback() }
        : { kind: "signal", since, until, name: String(input.name), ...callback() };
  }
  return [
    {
      type: "step.waiting",
      step_number: n,
      attempt: 1,
      // docs/api.md: `data` is the waiting object; when it wakes by itself and the resolved input ride along.
      data: { ...(waiting as unknown as Record<string, Json>), wake_at: wakeAt === null ? null : iso(wakeAt), input },
    },
  ];
}

const failed = (s: StepState, error: string, code: string): EventDraft => ({
  type: "step.failed",
  step_number: s.step.step_number,
  attempt: s.attempt,
  data: { error, code, retryable: false },
});

const succeeded = (s: StepState, output: Json, extra: Record<string, Json> = {}): EventDraft => ({
  type: "step.succeeded",
  step_number: s.step.step_number,
  attempt: s.attempt,
  data: { output, ...extra },
});

const approved = (s: StepState, by: string, now: number, body: ApproveBody = {}): EventDraft =>
  succeeded(s, {
    approved: true,
    comment: body.comment ?? null,
    data: (body.data ?? null) as Json,
    decided_at: iso(now),
    decided_by: by,
  });

/** Waiting steps whose time has come: a timer fires, an approval or a signal times out. */
export function wakeUps(state: RunState, ctx: DecideContext): EventDraft[] {
  const drafts: EventDraft[] = [];
  for (const s of state.steps.values()) {
    if (s.phase !== "waiting" || s.wakeAt === null || s.wakeAt > ctx.now || !s.waiting) continue;
    const w = s.waiting;
    if (w.kind === "timer") {
      drafts.push(succeeded(s, { waited_ms: ctx.now - Date.parse(w.since), woke_at: iso(ctx.now) }));
    } else if (w.kind === "approval") {
      const onTimeout = s.input.on_timeout === "approve" ? "approve" : "reject";
      drafts.push(
        onTimeout === "approve" ? approved(s, "timeout", ctx.now) : failed(s, "Approval timed out", "timeout"),
      );
    } else {
      drafts.push(failed(s, `Timed out waiting for signal '${w.name}'`, "timeout"));
    }
  }
  return drafts;
}

/** Signal steps that wait for a name a signal already arrived for: the first such signal is theirs. */
export function deliverBuffered(state: RunState): EventDraft[] {
  const drafts: EventDraft[] = [];
  const taken = new Set<number>();
  for (const s of state.steps.values()) {
    if (s.phase !== "waiting" || s.waiting?.kind !== "signal") continue;
    const buffered = state.signals.find((b) => b.name === s.waiting?.name && !taken.has(b.seq));
    if (!buffered) continue;
    taken.add(buffered.seq);
    drafts.push(
      succeeded(
        s,
        { name: buffered.name, data: buffered.data, received_at: buffered.at },
        { signal_seq: buffered.seq },
      ),
    );
  }
  return drafts;
}

/** The approval step a decision is about, or why there is none to decide. */
function approvalStep(state: RunState, stepNumber: number): StepState | Decision<never> {
  const s = state.steps.get(stepNumber);
  if (!s) return refuse(404, `Run '${state.runId}' has no step ${stepNumber}`);
  if (s.step.tool_name !== "approval")
    return refuse(409, `Step ${stepNumber} is a ${s.step.tool_name} step, not an approval`);
  if (isFinished(state)) return refuse(409, `Run '${state.runId}' already finished with status ${state.status}`);
  if (s.phase === "pending")
    return refuse(409, `Step ${stepNumber} has not been reached yet; it is not waiting for a decision`);
  if (s.phase !== "waiting") {
    const outcome =
      s.phase === "succeeded"
        ? "approved"
        : s.error === "Approval timed out"
          ? "it timed out"
          : s.phase === "failed"
            ? "rejected"
            : s.phase;
    return refuse(409, `Step ${stepNumber} was already decided (${outcome})`);
  }
  return s;
}

/** Approves a waiting approval step (by the API or a callback). */
export function onApprove(
  state: RunState,
  stepNumber: number,
  body: ApproveBody,
  by: "api" | "callback",
  ctx: DecideContext,
): Decision {
  const s = approvalStep(state, stepNumber);
  if ("ok" in s) return s;
  return { ok: true, drafts: [approved(s, by, ctx.now, body)], answer: undefined };
}

/** Rejects a waiting approval step: it fails, not retried, and the run's failure policy applies. */
export function onReject(state: RunState, stepNumber: number, reason: string | undefined): Decision {
  const s = approvalStep(state, stepNumber);
  if ("ok" in s) return s;
  return {
    ok: true,
    drafts: [failed(s, `Rejected: ${reason?.trim() || "no reason given"}`, "rejected")],
    answer: undefined,
  };
}

export interface SignalAccepted {
  delivered_to: number | null;
  buffered: boolean;
  /** The answer of an earlier signal with the same Idempotency-Key (nothing was delivered now). */
  replayed?: true;
}

/**
 * The name a signal step waits for: once it waits, the name it resolved; before, its plan's name
 * with its references resolved, when they resolve already; otherwise not known yet (null).
 */
function signalName(s: StepState, outputs: ReadonlyMap<number, Json>): string | null {
  if (s.phase === "waiting") return s.waiting?.name ?? null;
  try {
    const resolved = resolveReferences(s.step.tool_input.name ?? null, outputs);
    return typeof resolved === "string" ? resolved : null;
  } catch {
    return null; // a step it refers to has not succeeded, or its output lacks the path
  }
}

/**
 * A named signal: delivered to the first step that waits for the name now, else kept for a
 * `signal` step of that name that has not started waiting (the race is decided here, in the fold,
 * so it cannot lose the signal). With nobody left to take it: 409. A replayed `Idempotency-Key`
 * gets the first answer; the same key with another body is a 422.
 */
export function onSignal(
  state: RunState,
  name: string,
  data: Json,
  idempotency: SignalIdempotency | null,
  now: number,
): Decision<SignalAccepted> {
  if (idempotency) {
    const seen = state.signalKeys.get(idempotency.key);
    if (seen && !sameBody(seen.bodyHash, idempotency.body))
      return refuse(422, "Idempotency-Key was already used with a different signal");
    if (seen) return { ok: true, drafts: [], answer: { ...seen.answer, replayed: true } };
  }
  if (isFinished(state)) return refuse(409, `Run '${state.runId}' already finished with status ${state.status}`);
  const outputs = stepOutputs(state);
  const candidates = [...state.steps.values()].filter(
    (s) =>
      s.step.tool_name === "signal" &&
      (s.phase === "pending" || s.phase === "waiting") &&
      signalName(s, outputs) === name,
  );
  const waiting = candidates.find((s) => s.phase === "waiting" && s.waiting?.name === name);
  const buffered = state.signals.filter((b) => b.name === name).length;
  if (!waiting && candidates.length - buffered <= 0) {
    if (candidates.length === 0)
      return refuse(409, `No unfinished step of run '${state.runId}' waits for signal '${name}'`);
    // Each step takes one signal: those still to wait for this name have one kept for them already.
    return refuse(
      409,
      `Every unfinished step of run '${state.runId}' that waits for signal '${name}' already has one kept for it ` +
        `(${buffered} received before the step started waiting); another has no step to go to`,
    );
  }
  const delivered = waiting ? waiting.step.step_number : null;
  const received: EventDraft = {
    type: "signal.received",
    data: {
      name,
      data,
      delivered_to: delivered,
      ...(idempotency ? { idempotency_key: idempotency.key, body_hash: idempotency.body.hash } : {}),
    },
  };
  const drafts = waiting ? [received, succeeded(waiting, { name, data, received_at: iso(now) })] : [received];
  return { ok: true, drafts, answer: { delivered_to: delivered, buffered: delivered === null } };
}

/**
 * A keyless callback: valid only for a step that waits now with exactly this token. Anything
 * else — unknown token, a step already decided, a run that ended — is the same 404, so the URL
 * reveals nothing but its own step.
 */
export function onCallback(
  state: RunState,
  token: string,
  body: CallbackBody,
  ctx: DecideContext,
): Decision<{ step_number: number }> {
  const gone = refuse(404, "Unknown or expired callback");
  if (isFinished(state)) return gone;
  const s = [...state.steps.values()].find((step) => {
    const url = step.phase === "waiting" ? step.waiting?.callback_url : undefined;
    return url !== undefined && sameToken(url.slice(url.lastIndexOf("/") + 1), token);
  });
  if (!s?.waiting) return gone;
  const answer = { step_number: s.step.step_number };
  if (s.waiting.kind === "signal") {
    const other = (["approve", "comment", "reason"] as const).find((k) => body[k] !== undefined);
    if (other) return refuse(422, `${other} is for an approval step; a signal step's callback takes only data`);
    const name = s.waiting.name ?? "";
    const data = (body.data ?? null) as Json;
    return {
      ok: true,
      drafts: [
        { type: "signal.received", data: { name, data, delivered_to: s.step.step_number, via: "callback" } },
        succeeded(s, { name, data, received_at: iso(ctx.now) }),
      ],
      answer,
    };
  }
  if (body.approve === undefined) return refuse(422, "approve (true or false) is required to decide an approval");
  const drafts = body.approve
    ? [approved(s, "callback", ctx.now, body)]
    : [failed(s, `Rejected: ${body.reason?.trim() || "no reason given"}`, "rejected")];
  return { ok: true, drafts, answer };
}
