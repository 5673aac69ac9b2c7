import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, createRun, getEvents, waitForRun } from "../helpers/api";
import { eventsOf, watch } from "../helpers/live";

const slowPlan = (ms = 150) => ({
  prompt: "slow plan",
  plan: {
    steps: [
      { step_number: 1, tool_name: "sleep", tool_input: { ms } },
      { step_number: 2, tool_name: "sleep", tool_input: { ms } },
      { step_number: 3, tool_name: "calculator", tool_input: { expression: "2 + 3" }, depends_on: [1, 2] },
    ],
  },
});

const coordinator = (runId: string) => env.RUNS.get(env.RUNS.idFromName(`dev:${runId}`));

describe("live: WebSocket updates", () => {
  it("sends a snapshot, then every event in order with no gap, then closes with 1000", async () => {
    const run = await createRun(slowPlan());
    const { session } = await watch(run.run_id);
    expect(await session.closed).toBe(1000);
    const [first, ...rest] = session.messages;
    expect(first?.type).toBe("snapshot");
    if (first?.type !== "snapshot") throw new Error("no snapshot");
    expect(first.run.run_id).toBe(run.run_id);
    const events = eventsOf(rest);
    expect(events.length).toBe(rest.length);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => first.seq + 1 + i));
    expect(events.at(-1)?.type).toBe("run.completed");
    const log = await getEvents(run.run_id);
    expect(events).toEqual(log.slice(first.seq));
  });

  it("replays from ?after=0 so a client sees the whole log", async () => {
    const run = await createRun(slowPlan());
    const { session } = await watch(run.run_id, { after: 0 });
    await session.closed;
    expect(eventsOf(session.messages)).toEqual(await getEvents(run.run_id));
  });

  it("resumes with ?after=N: exactly the missing events, no duplicates", async () => {
    const run = await createRun(slowPlan(300));
    const first = await watch(run.run_id, { after: 0 });
    await first.session.received(4);
    first.session.close();
    const seen = eventsOf(first.session.messages);
    const lastSeen = seen.at(-1)?.seq ?? 0;

    const second = await watch(run.run_id, { after: lastSeen });
    expect(await second.session.closed).toBe(1000);
    const resumed = eventsOf(second.session.messages);
    expect(resumed[0]?.seq).toBe(lastSeen + 1);
    const all = [...seen.filter((e) => e.seq <= lastSeen), ...resumed];
    expect(all).toEqual(await getEvents(run.run_id));
  });

  it("never sends events at or before ?after=N, even when N is beyond the run's last event and across hibernation", async () => {
    const run = await createRun({
      prompt: "approve, then add",
      plan: {
        steps: [
          { step_number: 1, tool_name: "approval", tool_input: { message: "go?" } },
          { step_number: 2, tool_name: "calculator", tool_input: { expression: "1 + 1" }, depends_on: [1] },
        ],
      },
    });
    const waiting = await getEvents(run.run_id);
    const after = (waiting.at(-1)?.seq ?? 0) + 2;
    const { session } = await watch(run.run_id, { after });
    await session.received(1);
    expect(session.messages[0]).toMatchObject({ type: "snapshot", seq: after - 2 });
    await evictDurableObject(coordinator(run.run_id));
    const res = await api(`/api/v1/runs/${run.run_id}/steps/1/approve`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(await session.closed).toBe(1000);
    const log = await getEvents(run.run_id);
    expect(log.at(-1)?.type).toBe("run.completed");
    expect(log.length).toBeGreaterThan(after);
    expect(eventsOf(session.messages)).toEqual(log.filter((e) => e.seq > after));
  });

  it("gives a client that connects after the end the snapshot and the close", async () => {
    const run = await createRun({ prompt: "calculate 1 + 1" });
    await waitForRun(run.run_id);
    const { session } = await watch(run.run_id);
    expect(await session.closed).toBe(1000);
    expect(session.messages).toHaveLength(1);
    expect(session.messages[0]).toMatchObject({ type: "snapshot", run: { status: "completed", result: 2 } });
  });

  it("accepts the key as a bearer subprotocol and answers with crane.v1", async () => {
    const run = await createRun({ prompt: "calculate 2 + 2" });
    const res = await api(`/api/v1/runs/${run.run_id}/live`, {
      key: null,
      headers: {
        Upgrade: "websocket",
        "Sec-WebSocket-Protocol": "crane.v1, bearer.crane-dev-key",
        "X-Request-Id": "live-req-1",
      },
    });
    expect(res.status).toBe(101);
    expect(res.headers.get("Sec-WebSocket-Protocol")).toBe("crane.v1");
    // Like every response, the upgrade names its request and trace.
    expect(res.headers.get("X-Request-Id")).toBe("live-req-1");
    expect(res.headers.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    res.webSocket?.accept();
    res.webSocket?.close();
  });

  it("refuses a plain GET with 426 and an unknown run with 404", async () => {
    const run = await createRun({ prompt: "calculate 3 + 3" });
    expect((await api(`/api/v1/runs/${run.run_id}/live`)).status).toBe(426);
    const res = await api("/api/v1/runs/nope/live", { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("Content-Type")).toBe("application/problem+json");
    const bad = await api(`/api/v1/runs/${run.run_id}/live?after=-3`, { headers: { Upgrade: "websocket" } });
    expect(bad.status).toBe(400);
  });
});

describe("durability: the coordinator is evicted mid-run", () => {
  it("finishes the run with its log intact after eviction", async () => {
    const run = await createRun(slowPlan(200));
    const before = await getEvents(run.run_id);
    await evictDurableObject(coordinator(run.run_id));
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe("completed");
    expect(done.result).toBe(5);
    const after = await getEvents(run.run_id);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.map((e) => e.seq)).toEqual(after.map((_, i) => i + 1));
    expect(
      after
        .filter((e) => e.type === "step.succeeded")
        .map((e) => e.step_number)
        .sort(),
    ).toEqual([1, 2, 3]);
    expect(after.some((e) => e.type === "step.ignored")).toBe(false);
  });

  it("keeps streaming to a hibernated WebSocket across eviction", async () => {
    const run = await createRun(slowPlan(200));
    const { session } = await watch(run.run_id, { after: 0 });
    await session.received(3);
    await evictDurableObject(coordinator(run.run_id));
    expect(await session.closed).toBe(1000);
    expect(eventsOf(session.messages)).toEqual(await getEvents(run.run_id));
  });
});
