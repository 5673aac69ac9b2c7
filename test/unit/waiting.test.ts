import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { Json } from "../../src/contracts/common";
import { nextWake } from "../../src/run/attempts";
import type { DecideContext } from "../../src/run/context";
import type { EventDraft } from "../../src/run/events";
import { isParked, type RunState, reduce } from "../../src/run/state";
import { transition } from "../../src/run/transition";
import { toRun } from "../../src/run/view";
import { type Decision, onApprove, onCallback, onSignal } from "../../src/run/waiting";
import { type HarnessOptions, harness, label, step } from "../helpers/core";

const DAY = 24 * 60 * 60 * 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Every harness a test makes; after each test its log must fold back into exactly its state. */
let made: ReturnType<typeof harness>[] = [];
const run = (steps: Parameters<typeof harness>[0], opts?: HarnessOptions) => {
  const h = harness(steps, opts);
  made.push(h);
  return h;
};
afterEach(() => {
  for (const h of made) expect(reduce(h.log)).toEqual(h.state);
  made = [];
});

const wait = (n: number, input: Record<string, Json>, deps: number[] = []) => step(n, deps, "wait", input);
const approval = (n: number, deps: number[] = [], extra: Record<string, Json> = {}) =>
  step(n, deps, "approval", { message: `approve step ${n}?`, ...extra });
const signal = (n: number, name: string, deps: number[] = [], extra: Record<string, Json> = {}) =>
  step(n, deps, "signal", { name, ...extra });
const sleep = (n: number, deps: number[] = []) => step(n, deps, "sleep", { ms: 10 });

const entry = (h: ReturnType<typeof harness>, n: number) =>
  toRun(h.state).execution_log.find((e) => e.step_number === n);
const tokenOf = (h: ReturnType<typeof harness>, n: number): string => {
  const url = entry(h, n)?.waiting?.callback_url;
  if (!url) throw new Error(`step ${n} has no callback URL`);
  return url.slice(url.lastIndexOf("/") + 1);
};
const refusal = (d: { ok: boolean; status?: number; detail?: string }) => ({ status: d.status, detail: d.detail });

describe("wait: a durable timer", () => {
  it("waits {ms} and wakes exactly at its time, not before", () => {
    const h = run([wait(1, { ms: 5000 }), step(2, [1])]);
    const t0 = h.now();
    expect(h.plan()).toEqual(["run.planned", "step.waiting#1.1"]);
    const r = toRun(h.state);
    expect(r.status).toBe("running");
    expect(r.execution_log[0]).toMatchObject({
      status: "waiting",
      success: null,
      waiting: { kind: "timer", since: iso(t0), until: iso(t0 + 5000) },
    });
    expect(r.execution_log[0]?.waiting?.callback_url).toBeUndefined();
    expect(r.waiting_for).toEqual([{ step_number: 1, kind: "timer", since: iso(t0), until: iso(t0 + 5000) }]);
    expect(nextWake(h.state)).toBe(t0 + 5000);
    expect(h.tick(4999)).toEqual([]);
    expect(entry(h, 1)?.status).toBe("waiting");
    expect(h.tick(1)).toEqual(["step.succeeded#1.1", "step.dispatched#2.1"]);
    expect(entry(h, 1)).toMatchObject({
      status: "succeeded",
      success: true,
      output: { waited_ms: 5000, woke_at: iso(t0 + 5000) },
    });
    expect(toRun(h.state).waiting_for).toEqual([]);
  });

  it("waits {until} a time and wakes then, not before", () => {
    const h = run([wait(1, { until: iso(1_000_000 + 3 * DAY) })]);
    h.plan();
    expect(entry(h, 1)?.waiting).toMatchObject({ kind: "timer", until: iso(1_000_000 + 3 * DAY) });
    expect(h.tick(3 * DAY - 1)).toEqual([]);
    expect(h.tick(1)).toEqual(["step.succeeded#1.1", "run.completed"]);
    expect(toRun(h.state)).toMatchObject({
      status: "completed",
      result: { waited_ms: 3 * DAY, woke_at: iso(1_000_000 + 3 * DAY) },
    });
  });

  it("waits the longest allowed wait, 365 days", () => {
    const h = run([wait(1, { ms: 365 * DAY })]);
    h.plan();
    expect(h.tick(365 * DAY - 1)).toEqual([]);
    expect(h.tick(1)).toEqual(["step.succeeded#1.1", "run.completed"]);
  });

  it("fails a wait whose input resolved from a reference is invalid, without retrying", () => {
    const h = run([step(1), wait(2, { ms: "{{steps.1.output}}" }, [1])]);
    h.plan();
    expect(h.succeed(1, "soon")).toEqual(["step.started#1.1", "step.succeeded#1.1", "step.failed#2.1", "run.failed"]);
    expect(entry(h, 2)?.error).toMatch(/^Invalid input for wait/);
  });
});

describe("approval", () => {
  it("waits with a message and a callback URL, then an approval succeeds the step with its comment and data", () => {
    const h = run([approval(1), step(2, [1])]);
    const t0 = h.now();
    expect(h.plan()).toEqual(["run.planned", "step.waiting#1.1"]);
    const w = entry(h, 1)?.waiting;
    expect(w).toMatchObject({ kind: "approval", since: iso(t0), until: null, message: "approve step 1?" });
    expect(w?.callback_url).toMatch(/^https:\/\/crane\.test\/api\/v1\/callbacks\/[0-9a-f]{64}\.[A-Za-z0-9_-]{22,}$/);
    expect(toRun(h.state).waiting_for).toEqual([{ step_number: 1, ...w }]);
    h.tick(1000);
    const { decision, events } = h.approve(1, { comment: "ship it", data: { ticket: 7 } });
    expect(decision.ok).toBe(true);
    expect(events).toEqual(["step.succeeded#1.1", "step.dispatched#2.1"]);
    expect(entry(h, 1)).toMatchObject({
      status: "succeeded",
      attempts: 1,
      output: {
        approved: true,
        comment: "ship it",
        data: { ticket: 7 },
        decided_at: iso(t0 + 1000),
        decided_by: "api",
      },
    });
    expect(toRun(h.state).waiting_for).toEqual([]);
  });

  it("approves without a body: comment and data are null", () => {
    const h = run([approval(1)]);
    h.plan();
    expect(h.approve(1).events).toEqual(["step.succeeded#1.1", "run.completed"]);
    expect(entry(h, 1)?.output).toMatchObject({ approved: true, comment: null, data: null, decided_by: "api" });
  });

  it("a rejection fails the step without a retry and the run fails fast", () => {
    const h = run([approval(1), step(2, [1])]);
    h.plan();
    const { decision, events } = h.reject(1, "too risky");
    expect(decision.ok).toBe(true);
    expect(events).toEqual(["step.failed#1.1", "step.skipped#2", "run.failed"]);
    expect(entry(h, 1)).toMatchObject({ status: "failed", success: false, error: "Rejected: too risky", attempts: 1 });
    expect(toRun(h.state).error).toBe("Step 1 (approval) failed: Rejected: too risky");
    expect(h.log.some((e) => e.type === "step.retry_scheduled")).toBe(false);
  });

  it("a rejection under on_failure continue fails only that branch", () => {
    const h = run([approval(1), step(2, [1]), sleep(3)], { options: { on_failure: "continue" } });
    expect(h.plan()).toEqual(["run.planned", "step.waiting#1.1", "step.dispatched#3.1"]);
    expect(h.reject(1).events).toEqual(["step.failed#1.1", "step.skipped#2"]);
    expect(entry(h, 1)?.error).toBe("Rejected: no reason given");
    expect(h.succeed(3)).toEqual(["step.started#3.1", "step.succeeded#3.1", "run.failed"]);
  });

  it("times out into a rejection by default, at its timeout and not before", () => {
    const h = run([approval(1, [], { timeout_ms: 60_000 })]);
    const t0 = h.now();
    h.plan();
    expect(entry(h, 1)?.waiting?.until).toBe(iso(t0 + 60_000));
    expect(nextWake(h.state)).toBe(t0 + 60_000);
    expect(h.tick(59_999)).toEqual([]);
    expect(h.tick(1)).toEqual(["step.failed#1.1", "run.failed"]);
    expect(entry(h, 1)).toMatchObject({ status: "failed", error: "Approval timed out", attempts: 1 });
  });

  it("times out into an approval with on_timeout approve, decided by the timeout", () => {
    const h = run([approval(1, [], { timeout_ms: 1000, on_timeout: "approve" })]);
    const t0 = h.now();
    h.plan();
    expect(h.tick(1000)).toEqual(["step.succeeded#1.1", "run.completed"]);
    expect(entry(h, 1)?.output).toEqual({
      approved: true,
      comment: null,
      data: null,
      decided_at: iso(t0 + 1000),
      decided_by: "timeout",
    });
  });

  it("an approval decided before its timeout no longer times out", () => {
    const h = run([approval(1, [], { timeout_ms: 1000 }), sleep(2, [1])]);
    h.plan();
    h.approve(1);
    expect(nextWake(h.state)).not.toBe(1_000_000 + 1000);
    expect(h.tick(5000).filter((l) => l.includes("#1"))).toEqual([]);
    expect(entry(h, 1)?.status).toBe("succeeded");
  });
});

describe("approval: decisions that do not fit answer 409 (or 404) and change nothing", () => {
  it("refuses a step that is not an approval step", () => {
    const h = run([approval(1), sleep(2)]);
    h.plan();
    const { decision, events } = h.approve(2);
    expect(refusal(decision)).toEqual({ status: 409, detail: "Step 2 is a sleep step, not an approval" });
    expect(events).toEqual([]);
    expect(refusal(h.reject(2).decision)).toEqual({ status: 409, detail: "Step 2 is a sleep step, not an approval" });
  });

  it("refuses an approval step that has not been reached yet", () => {
    const h = run([sleep(1), approval(2, [1])]);
    h.plan();
    const { decision, events } = h.approve(2);
    expect(refusal(decision)).toEqual({
      status: 409,
      detail: "Step 2 has not been reached yet; it is not waiting for a decision",
    });
    expect(events).toEqual([]);
    expect(refusal(h.reject(2).decision).status).toBe(409);
  });

  it("takes a decision once: a second approve or a reject after it is refused", () => {
    const h = run([approval(1), approval(2)]);
    h.plan();
    h.approve(1);
    const again = h.approve(1);
    expect(refusal(again.decision)).toEqual({ status: 409, detail: "Step 1 was already decided (approved)" });
    expect(again.events).toEqual([]);
    expect(refusal(h.reject(1).decision)).toEqual({ status: 409, detail: "Step 1 was already decided (approved)" });
    expect(entry(h, 1)?.output).toMatchObject({ approved: true });
  });

  it("refuses to approve a step that was rejected", () => {
    const h = run([approval(1), approval(2)], { options: { on_failure: "continue" } });
    h.plan();
    h.reject(1, "no");
    expect(refusal(h.approve(1).decision)).toEqual({ status: 409, detail: "Step 1 was already decided (rejected)" });
    expect(entry(h, 1)?.status).toBe("failed");
  });

  it("refuses a decision on a finished run", () => {
    const h = run([approval(1)]);
    h.plan();
    h.cancel();
    expect(refusal(h.approve(1).decision)).toEqual({
      status: 409,
      detail: "Run 'r1' already finished with status cancelled",
    });
    expect(refusal(h.reject(1).decision).status).toBe(409);
  });

  it("answers 404 for a step the plan does not have", () => {
    const h = run([approval(1)]);
    h.plan();
    expect(refusal(h.approve(9).decision)).toEqual({ status: 404, detail: "Run 'r1' has no step 9" });
    expect(refusal(h.reject(9).decision).status).toBe(404);
  });
});

describe("signal", () => {
  it("a signal completes the step waiting for its name, with its data", () => {
    const h = run([signal(1, "payment_received"), step(2, [1])]);
    const t0 = h.now();
    h.plan();
    expect(entry(h, 1)?.waiting).toMatchObject({ kind: "signal", name: "payment_received", until: null });
    expect(entry(h, 1)?.waiting?.callback_url).toMatch(/\/api\/v1\/callbacks\//);
    h.tick(250);
    const { decision, events } = h.signal("payment_received", { amount: 42 });
    expect(decision).toMatchObject({ ok: true, answer: { delivered_to: 1, buffered: false } });
    expect(events).toEqual(["signal.received", "step.succeeded#1.1", "step.dispatched#2.1"]);
    expect(h.log.find((e) => e.type === "signal.received")?.data).toMatchObject({
      name: "payment_received",
      data: { amount: 42 },
      delivered_to: 1,
    });
    expect(entry(h, 1)?.output).toEqual({ name: "payment_received", data: { amount: 42 }, received_at: iso(t0 + 250) });
  });

  it("keeps a signal that arrives before its step waits and hands it over when the step does (the race)", () => {
    const h = run([sleep(1), signal(2, "go", [1])]);
    h.plan();
    const { decision, events } = h.signal("go", "early");
    expect(decision).toMatchObject({ ok: true, answer: { delivered_to: null, buffered: true } });
    expect(events).toEqual(["signal.received"]);
    expect(h.log.at(-1)?.data).toMatchObject({ name: "go", data: "early", delivered_to: null });
    expect(entry(h, 2)?.status).toBe("pending");
    expect(h.succeed(1)).toEqual([
      "step.started#1.1",
      "step.succeeded#1.1",
      "step.waiting#2.1",
      "step.succeeded#2.1",
      "run.completed",
    ]);
    expect(entry(h, 2)?.output).toMatchObject({ name: "go", data: "early" });
    expect(h.state.signals).toEqual([]);
  });

  it("gives two signals of one name to two steps, one each, and refuses a third with 409", () => {
    const h = run([sleep(1), signal(2, "go", [1]), signal(3, "go", [1])]);
    h.plan();
    expect(h.signal("go", "first").decision).toMatchObject({ ok: true, answer: { buffered: true } });
    expect(h.signal("go", "second").decision).toMatchObject({ ok: true, answer: { buffered: true } });
    const third = h.signal("go", "third");
    expect(refusal(third.decision)).toEqual({
      status: 409,
      detail:
        "Every unfinished step of run 'r1' that waits for signal 'go' already has one kept for it " +
        "(2 received before the step started waiting); another has no step to go to",
    });
    expect(third.events).toEqual([]);
    h.succeed(1);
    expect(toRun(h.state).status).toBe("completed");
    const got = [entry(h, 2)?.output, entry(h, 3)?.output].map((o) => (o as { data: Json }).data);
    expect(got.sort()).toEqual(["first", "second"]);
  });

  it("delivers to a waiting step and buffers for a pending one of the same name", () => {
    const h = run([signal(1, "go"), sleep(2), signal(3, "go", [2])]);
    h.plan();
    expect(h.signal("go", 1).decision).toMatchObject({ ok: true, answer: { delivered_to: 1, buffered: false } });
    expect(h.signal("go", 2).decision).toMatchObject({ ok: true, answer: { delivered_to: null, buffered: true } });
    expect(refusal(h.signal("go", 3).decision).status).toBe(409);
    h.succeed(2);
    expect(entry(h, 3)?.output).toMatchObject({ data: 2 });
  });

  it("refuses a signal no step waits for, and one for a run that finished", () => {
    const h = run([signal(1, "go")]);
    h.plan();
    expect(refusal(h.signal("stop").decision)).toEqual({
      status: 409,
      detail: "No unfinished step of run 'r1' waits for signal 'stop'",
    });
    h.signal("go");
    expect(toRun(h.state).status).toBe("completed");
    expect(refusal(h.signal("go").decision)).toEqual({
      status: 409,
      detail: "Run 'r1' already finished with status completed",
    });
  });

  it("times out: the step fails without a retry", () => {
    const h = run([signal(1, "go", [], { timeout_ms: 30_000 })]);
    h.plan();
    expect(h.tick(29_999)).toEqual([]);
    expect(h.tick(1)).toEqual(["step.failed#1.1", "run.failed"]);
    expect(entry(h, 1)).toMatchObject({ error: "Timed out waiting for signal 'go'", attempts: 1 });
  });

  it("replays the first answer for a repeated Idempotency-Key, and refuses the key with another body (422)", () => {
    const h = run([sleep(1), signal(2, "go", [1])]);
    h.plan();
    const first = h.signal("go", { n: 1 }, "key-1");
    expect(first.decision).toMatchObject({ ok: true, answer: { delivered_to: null, buffered: true } });
    const replay = h.signal("go", { n: 1 }, "key-1");
    expect(replay.decision).toMatchObject({ ok: true, answer: { delivered_to: null, buffered: true } });
    expect(replay.events).toEqual([]);
    expect(h.state.signals).toHaveLength(1);
    expect(refusal(h.signal("go", { n: 2 }, "key-1").decision)).toEqual({
      status: 422,
      detail: "Idempotency-Key was already used with a different signal",
    });
    h.succeed(1);
    // After the step took it, and after the run finished, the key still answers as it did.
    expect(h.signal("go", { n: 1 }, "key-1").decision).toMatchObject({ ok: true, answer: { buffered: true } });
    expect(h.log.filter((e) => e.type === "signal.received")).toHaveLength(1);
  });
});

describe("callback URLs", () => {
  it("approve via the callback once: decided_by callback; a second use or an unknown token is 404", () => {
    const h = run([approval(1)]);
    h.plan();
    const token = tokenOf(h, 1);
    const { decision, events } = h.callback(token, { approve: true, comment: "lgtm", data: [1] });
    expect(decision).toMatchObject({ ok: true, answer: { step_number: 1 } });
    expect(events).toEqual(["step.succeeded#1.1", "run.completed"]);
    expect(entry(h, 1)?.output).toMatchObject({ approved: true, comment: "lgtm", data: [1], decided_by: "callback" });
    const again = h.callback(token, { approve: true });
    expect(refusal(again.decision)).toEqual({ status: 404, detail: "Unknown or expired callback" });
    expect(again.events).toEqual([]);
  });

  it("answers the same 404 for an unknown, a used and an expired token", () => {
    const h = run([approval(1, [], { timeout_ms: 1000 }), approval(2), approval(3)], {
      options: { on_failure: "continue" },
    });
    h.plan();
    const [t1, t2, t3] = [tokenOf(h, 1), tokenOf(h, 2), tokenOf(h, 3)];
    expect(new Set([t1, t2, t3]).size).toBe(3);
    h.tick(1000); // step 1 times out: its token expires
    h.callback(t2, { approve: true });
    const unknown = h.callback(`${"a".repeat(64)}.${"x".repeat(26)}`, { approve: true });
    const used = h.callback(t2, { approve: true });
    const expired = h.callback(t1, { approve: true });
    for (const d of [unknown, used, expired]) {
      expect(refusal(d.decision)).toEqual({ status: 404, detail: "Unknown or expired callback" });
    }
    expect(entry(h, 3)?.status).toBe("waiting");
  });

  it("rejects via the callback with a reason", () => {
    const h = run([approval(1)]);
    h.plan();
    expect(h.callback(tokenOf(h, 1), { approve: false, reason: "nope" }).events).toEqual([
      "step.failed#1.1",
      "run.failed",
    ]);
    expect(entry(h, 1)?.error).toBe("Rejected: nope");
  });

  it("needs approve to decide an approval (422) and leaves the token usable", () => {
    const h = run([approval(1)]);
    h.plan();
    const token = tokenOf(h, 1);
    expect(refusal(h.callback(token, { comment: "?" }).decision).status).toBe(422);
    expect(h.callback(token, { approve: true }).decision.ok).toBe(true);
  });

  it("delivers a signal step's data via its callback", () => {
    const h = run([signal(1, "ci.done")]);
    h.plan();
    const { events } = h.callback(tokenOf(h, 1), { data: { build: 9 } });
    expect(events).toEqual(["signal.received", "step.succeeded#1.1", "run.completed"]);
    expect(h.log.find((e) => e.type === "signal.received")?.data).toMatchObject({
      name: "ci.done",
      data: { build: 9 },
      delivered_to: 1,
    });
    expect(entry(h, 1)?.output).toMatchObject({ name: "ci.done", data: { build: 9 } });
  });

  it("a token decides only its own step", () => {
    const h = run([approval(1), approval(2)]);
    h.plan();
    h.callback(tokenOf(h, 2), { approve: true });
    expect(entry(h, 1)?.status).toBe("waiting");
    expect(entry(h, 2)?.status).toBe("succeeded");
  });

  it("a token of a cancelled run is 404", () => {
    const h = run([signal(1, "go")]);
    h.plan();
    const token = tokenOf(h, 1);
    h.cancel();
    expect(refusal(h.callback(token, { data: 1 }).decision).status).toBe(404);
  });

  it("has no callback URL when the run has no origin", () => {
    const h = run([approval(1)], { origin: null });
    h.plan();
    expect(entry(h, 1)?.waiting?.callback_url).toBeUndefined();
  });
});

describe("a timeout that is due decides before a command that arrives late", () => {
  /**
   * Runs `command` at `ms` past the harness clock without running the watchdog first: a command
   * that reaches the coordinator after a wait's deadline but before its alarm fired (alarms can
   * be late). The harness has no clock move without the watchdog, so this drives `transition`
   * directly, exactly as the coordinator's `decide` does.
   */
  function lateCommand<A>(
    h: ReturnType<typeof harness>,
    ms: number,
    command: (s: RunState, c: DecideContext) => Decision<A>,
  ): { decision: Decision<A>; events: string[] } {
    let decision: Decision<A> | null = null;
    const events = transition(h.state, { ...h.ctx(), now: h.now() + ms }, (s, c): EventDraft[] => {
      decision = command(s, c);
      return decision.ok ? decision.drafts : [];
    });
    h.log.push(...events);
    return { decision: decision as unknown as Decision<A>, events: events.map(label) };
  }

  it("an approval after its timeout is refused (409) and the step times out", () => {
    const h = run([approval(1, [], { timeout_ms: 1000 })]);
    h.plan();
    const { decision, events } = lateCommand(h, 1500, (s, c) => onApprove(s, 1, {}, "api", c));
    expect(decision.ok).toBe(false);
    expect(refusal(decision).status).toBe(409);
    expect(events).toEqual(["step.failed#1.1", "run.failed"]);
    expect(entry(h, 1)?.error).toBe("Approval timed out");
  });

  it("a callback after its step's timeout is 404 (expired)", () => {
    const h = run([approval(1, [], { timeout_ms: 1000 })]);
    h.plan();
    const token = tokenOf(h, 1);
    const { decision } = lateCommand(h, 1500, (s, c) => onCallback(s, token, { approve: true }, c));
    expect(refusal(decision)).toEqual({ status: 404, detail: "Unknown or expired callback" });
    expect(entry(h, 1)?.error).toBe("Approval timed out");
  });

  it("a signal after its step's timeout is refused (409)", () => {
    const h = run([signal(1, "go", [], { timeout_ms: 1000 })]);
    h.plan();
    const { decision } = lateCommand(h, 1500, (s, c) => onSignal(s, "go", 1, null, c.now));
    expect(refusal(decision).status).toBe(409);
    expect(entry(h, 1)?.error).toBe("Timed out waiting for signal 'go'");
  });
});

describe("cancel and parking", () => {
  it("cancel ends every wait and the run is cancelled", () => {
    const h = run([approval(1), wait(2, { ms: DAY }), signal(3, "go"), step(4, [1, 2, 3])]);
    h.plan();
    expect(toRun(h.state).waiting_for.map((w) => w.step_number)).toEqual([1, 2, 3]);
    const { decision, events } = h.cancel();
    expect(decision.ok).toBe(true);
    expect(events).toEqual([
      "step.cancelled#1.1",
      "step.cancelled#2.1",
      "step.cancelled#3.1",
      "step.skipped#4",
      "run.cancelled",
    ]);
    expect(toRun(h.state).waiting_for).toEqual([]);
    expect(nextWake(h.state)).toBeNull();
    expect(h.tick(DAY)).toEqual([]);
  });

  it("a waiting step does not count against max_parallel", () => {
    const h = run([approval(1), sleep(2), sleep(3)], { options: { max_parallel: 1 } });
    expect(h.plan()).toEqual(["run.planned", "step.waiting#1.1", "step.dispatched#2.1"]);
    expect(h.succeed(2)).toEqual(["step.started#2.1", "step.succeeded#2.1", "step.dispatched#3.1"]);
  });

  it("a wait starts at once even when max_parallel steps are in flight (it holds no slot)", () => {
    const h = run([sleep(1), wait(2, { ms: 1000 })], { options: { max_parallel: 1 } });
    expect(h.plan()).toEqual(["run.planned", "step.dispatched#1.1", "step.waiting#2.1"]);
  });

  it("a run is parked only while nothing but waits is in flight", () => {
    const h = run([approval(1), sleep(2), step(3, [1, 2])]);
    h.plan();
    expect(isParked(h.state)).toBe(false); // step 2 is on the queue
    h.succeed(2);
    expect(isParked(h.state)).toBe(true); // only the approval is unfinished work; step 3 waits on it
    h.approve(1);
    expect(isParked(h.state)).toBe(false);
    h.succeed(3);
    expect(isParked(h.state)).toBe(false); // finished
  });
});

describe("property: signals are never lost nor duplicated", () => {
  type Action =
    | { kind: "signal"; name: string }
    | { kind: "keyed"; name: string; key: string }
    | { kind: "finish1" }
    | { kind: "tick"; ms: number };

  it("whatever the interleaving of signals and step progress", () => {
    const action: fc.Arbitrary<Action> = fc.oneof(
      fc.record({ kind: fc.constant("signal" as const), name: fc.constantFrom("a", "b", "c") }),
      fc.record({
        kind: fc.constant("keyed" as const),
        name: fc.constantFrom("a", "b"),
        key: fc.constantFrom("k1", "k2"),
      }),
      fc.constant({ kind: "finish1" as const }),
      fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 1, max: 10_000 }) }),
    );
    // Signal steps: some wait at once, some after step 1 (a sleep); one has a timeout.
    const plan = fc.array(fc.record({ name: fc.constantFrom("a", "b"), after1: fc.boolean(), timeout: fc.boolean() }), {
      minLength: 1,
      maxLength: 5,
    });
    fc.assert(
      fc.property(plan, fc.array(action, { maxLength: 25 }), (specs, actions) => {
        const steps = [
          sleep(1),
          ...specs.map((s, i) => signal(i + 2, s.name, s.after1 ? [1] : [], s.timeout ? { timeout_ms: 30_000 } : {})),
        ];
        // Step 1 never hits its watchdog deadline here (25 ticks of ≤ 10 s < 300 s + grace).
        const h = harness(steps, { options: { on_failure: "continue", step_timeout_ms: 300_000 } });
        h.plan();
        const accepted = new Map<string, Json>(); // data id → name
        const answers = new Map<string, unknown>();
        let counter = 0;
        let started1 = false;
        for (const a of [...actions, { kind: "finish1" } as Action]) {
          if (a.kind === "finish1") {
            if (!started1 && toRun(h.state).status === "running") h.succeed(1);
            started1 = true;
            continue;
          }
          if (a.kind === "tick") {
            h.tick(a.ms);
            continue;
          }
          const id = a.kind === "keyed" ? `${a.name}:${a.key}` : `${a.name}#${++counter}`;
          const before = structuredClone(h.state);
          const { decision } = h.signal(a.name, id, a.kind === "keyed" ? a.key : undefined);
          if (a.kind === "keyed" && answers.has(a.key)) {
            // A replay: the first answer, nothing new (or 422 for the key with another signal).
            const first = answers.get(a.key) as { ok: boolean; id: string; answer?: unknown };
            if (first.id === id) expect(decision).toMatchObject({ ok: true, answer: first.answer });
            else expect(refusal(decision).status).toBe(422);
            continue;
          }
          if (decision.ok) {
            accepted.set(id, a.name);
            if (a.kind === "keyed") answers.set(a.key, { ok: true, id, answer: decision.answer });
          } else {
            // Refused only when nobody is left to take it.
            const waitingNow = [...before.steps.values()].some(
              (s) => s.phase === "waiting" && s.waiting?.name === a.name,
            );
            const pending = [...before.steps.values()].filter(
              (s) => s.phase === "pending" && s.step.tool_input.name === a.name,
            ).length;
            const kept = before.signals.filter((b) => b.name === a.name).length;
            expect(decision.status).toBe(409);
            expect(waitingNow).toBe(false);
            expect(pending).toBeLessThanOrEqual(kept);
          }
        }
        expect(reduce(h.log)).toEqual(h.state);
        // Every accepted signal is in exactly one place: a step's output or the buffer.
        const delivered = [...h.state.steps.values()]
          .filter((s) => s.step.tool_name === "signal" && s.phase === "succeeded")
          .map((s) => (s.output as { data: string }).data);
        const kept = h.state.signals.map((b) => b.data as string);
        const everywhere = [...delivered, ...kept];
        expect(new Set(everywhere).size).toBe(everywhere.length);
        expect(everywhere.sort()).toEqual([...accepted.keys()].sort());
        // Step 1 has finished, so every step has started waiting: nothing stays buffered.
        expect(kept).toEqual([]);
        // A step got a signal of its own name.
        for (const s of h.state.steps.values()) {
          if (s.step.tool_name === "signal" && s.phase === "succeeded") {
            expect(accepted.get((s.output as { data: string }).data)).toBe(s.step.tool_input.name);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
