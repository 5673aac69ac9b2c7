// crane/client against a real `wrangler dev`: every v1 method, error mapping, paging, and the
// live stream's reconnection. (The v1.1 methods are in client-v11.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCrane } from "../../scripts/local-wrangler";
import {
  CraneClient,
  CraneConnectionError,
  CraneError,
  type CreateRunBody,
  type LiveMessage,
  type RunEvent,
} from "../../src/client";
import { poll } from "../helpers/poll";

const crane = new LocalCrane();
let client: CraneClient;

beforeAll(async () => {
  crane.migrate();
  await crane.start();
  client = new CraneClient({ baseUrl: crane.url });
});
afterAll(() => crane.dispose());

const tag = () => `t${crypto.randomUUID().slice(0, 8)}`;

/** Three sleeps one after the other, then a sum of their outputs: a run that lasts ~1 s and emits ~15 events. */
const chain = (prompt: string): CreateRunBody => ({
  prompt,
  plan: {
    steps: [
      { step_number: 1, tool_name: "sleep", tool_input: { ms: 300 } },
      { step_number: 2, tool_name: "sleep", tool_input: { ms: 300 }, depends_on: [1] },
      { step_number: 3, tool_name: "sleep", tool_input: { ms: 300 }, depends_on: [2] },
      {
        step_number: 4,
        tool_name: "calculator",
        tool_input: {
          expression: "{{steps.1.output.slept_ms}} + {{steps.2.output.slept_ms}} + {{steps.3.output.slept_ms}}",
        },
      },
    ],
  },
});

async function collect(messages: AsyncIterable<LiveMessage>): Promise<LiveMessage[]> {
  const all: LiveMessage[] = [];
  for await (const m of messages) all.push(m);
  return all;
}

const eventsOf = (messages: LiveMessage[]): RunEvent[] =>
  messages.flatMap((m) => (m.type === "event" ? [m.event] : []));

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to fail");
}

/** A WebSocket whose listeners can be cut off from the real socket, as a dropped connection would be. */
type Tap = (socket: TappedSocket, message: string, index: number) => void;

class TappedSocket extends EventTarget {
  static opened: TappedSocket[] = [];
  static tap: Tap = () => {};
  static swallowClose = false;
  readonly url: string;
  private readonly real: WebSocket;
  private cut = false;
  private count = 0;

  constructor(url: string, protocols: string[]) {
    super();
    this.url = url;
    TappedSocket.opened.push(this);
    this.real = new WebSocket(url, protocols);
    this.real.addEventListener("message", (ev) => {
      if (this.cut) return;
      this.dispatchEvent(Object.assign(new Event("message"), { data: ev.data }));
      TappedSocket.tap(this, String(ev.data), this.count++);
    });
    this.real.addEventListener("close", (ev) => {
      if (!this.cut && !TappedSocket.swallowClose) {
        this.dispatchEvent(Object.assign(new Event("close"), { code: ev.code, reason: ev.reason }));
      }
    });
    this.real.addEventListener("error", () => {
      if (!this.cut) this.dispatchEvent(new Event("error"));
    });
  }

  get readyState(): number {
    return this.cut ? 3 : this.real.readyState;
  }

  close(code?: number, reason?: string): void {
    this.real.close(code, reason);
  }

  /** Drops the connection: the client sees an abnormal close (1006) and nothing after it. */
  drop(): void {
    this.cut = true;
    this.real.close();
    this.dispatchEvent(Object.assign(new Event("close"), { code: 1006, reason: "dropped by the test" }));
  }

  static reset(): void {
    TappedSocket.opened = [];
    TappedSocket.tap = () => {};
    TappedSocket.swallowClose = false;
  }
}
const tapped = () => new CraneClient({ baseUrl: crane.url, WebSocket: TappedSocket as unknown as typeof WebSocket });

describe("runs", () => {
  it("createRun answers the planned run; a pure calculation is complete already; getRun reads it back", async () => {
    const run = await client.createRun({ prompt: "calculate (41*7)+13" });
    expect(run.status).toBe("completed");
    expect(run.result).toBe(300);
    expect(run.plan?.planner).toBe("rules");
    const again = await client.getRun(run.run_id);
    expect(again).toMatchObject({ run_id: run.run_id, status: "completed", result: 300 });
    expect(again.execution_log[0]).toMatchObject({ tool_name: "calculator", success: true, output: 300 });
  });

  it("an Idempotency-Key replays the same run; the same key with another body is a 422", async () => {
    const key = crypto.randomUUID();
    const first = await client.createRun({ prompt: "calculate 2*21" }, { idempotencyKey: key });
    const replay = await client.createRun({ prompt: "calculate 2*21" }, { idempotencyKey: key });
    expect(replay.run_id).toBe(first.run_id);
    const err = await rejection(client.createRun({ prompt: "calculate 2*22" }, { idempotencyKey: key }));
    expect(err).toBeInstanceOf(CraneError);
    expect((err as CraneError).status).toBe(422);
    expect((err as CraneError).problem.detail).toMatch(/Idempotency-Key/);
  });

  it("events pages the log with after and limit; allEvents reads all of it", async () => {
    const run = await client.createRun({ prompt: "calculate 1+1 then multiply it by 3" });
    const all = await client.events(run.run_id);
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    expect(all.at(-1)?.type).toBe("run.completed");
    const page = await client.events(run.run_id, { after: 2, limit: 2 });
    expect(page.map((e) => e.seq)).toEqual([3, 4]);
    const walked: RunEvent[] = [];
    for await (const e of client.allEvents(run.run_id, { after: 1 })) walked.push(e);
    expect(walked).toEqual(all.slice(1));
  });

  it("cancel stops a running run; cancelling it again is a 409", async () => {
    const run = await client.createRun({
      prompt: "a sleep to cancel",
      // Short: the local queue hands out one batch at a time, so a long sleep would hold up the next tests.
      plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 2000 } }] },
    });
    expect(run.status).toBe("running");
    const cancelled = await client.cancel(run.run_id);
    expect(cancelled.status).toBe("cancelled");
    const err = (await rejection(client.cancel(run.run_id))) as CraneError;
    expect(err.status).toBe(409);
    expect(err.problem.detail).toMatch(/already finished/);
  });
});

describe("errors", () => {
  it("a body the server refuses is a CraneError carrying the problem+json, errors included", async () => {
    const err = await rejection(client.createRun({ prompt: "   " }));
    expect(err).toBeInstanceOf(CraneError);
    const e = err as CraneError;
    expect(e.status).toBe(422);
    expect(e.problem).toMatchObject({ status: 422, title: "Unprocessable Content" });
    expect(e.problem.errors?.some((x) => x.path === "prompt")).toBe(true);
    expect(e.message).toBe(e.problem.detail);
    expect(e.requestId).toMatch(/\S/);
  });

  it("a bad query parameter is a 400 naming it", async () => {
    const e = (await rejection(client.listRuns({ limit: 1000 }))) as CraneError;
    expect(e.status).toBe(400);
    expect(e.problem.detail).toMatch(/limit/);
  });

  it("an unknown run is a 404", async () => {
    const e = (await rejection(client.getRun("no-such-run"))) as CraneError;
    expect(e.status).toBe(404);
    expect(e.problem.detail).toBe("Run 'no-such-run' not found");
  });

  it("a wrong key is a 401; health needs none", async () => {
    const stranger = new CraneClient({ baseUrl: crane.url, apiKey: "not-a-key" });
    const e = (await rejection(stranger.tools())) as CraneError;
    expect(e.status).toBe(401);
    expect((await stranger.health()).status).toBe("healthy");
  });

  it("an unreachable server is a CraneConnectionError with status 0", async () => {
    const nowhere = new CraneClient({ baseUrl: "http://127.0.0.1:9" });
    const e = await rejection(nowhere.getRun("x"));
    expect(e).toBeInstanceOf(CraneConnectionError);
    expect(e).toBeInstanceOf(CraneError);
    expect((e as CraneError).status).toBe(0);
    expect((e as CraneError).problem.detail).toMatch(/Cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it("an error answer that is not problem+json (a proxy's page) still becomes a CraneError", async () => {
    const proxied = new CraneClient({
      baseUrl: crane.url,
      fetch: async () => new Response("<html>Bad gateway</html>", { status: 502, statusText: "Bad Gateway" }),
    });
    const e = (await rejection(proxied.getRun("x"))) as CraneError;
    expect(e.status).toBe(502);
    expect(e.problem.title).toBe("Bad Gateway");
    expect(e.problem.detail).toMatch(/GET \/api\/v1\/runs\/x answered 502: <html>Bad gateway/);
  });
});

describe("history", () => {
  it("listRuns pages with the Link cursor; runs() walks every page, each run once, newest first", async () => {
    const t = tag();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const run = await client.createRun({
        prompt: `paging ${t} ${i}`,
        plan: { steps: [{ step_number: 1, tool_name: "calculator", tool_input: { expression: `${i}+1` } }] },
      });
      ids.push(run.run_id);
    }
    const newestFirst = [...ids].reverse();
    // Paging is the subject here, not how soon the index catches up: wait until it lists all five.
    await poll("the five runs in the index", async () => {
      const page = await client.listRuns({ q: t, limit: 10 });
      return page.items.length === 5 ? page : null;
    });

    const first = await client.listRuns({ q: t, limit: 2 });
    expect(first.items.map((r) => r.run_id)).toEqual(newestFirst.slice(0, 2));
    expect(first.next).toEqual(expect.any(String));
    const second = await client.listRuns({ q: t, limit: 2, cursor: first.next as string });
    expect(second.items.map((r) => r.run_id)).toEqual(newestFirst.slice(2, 4));
    const third = await client.listRuns({ q: t, limit: 2, cursor: second.next as string });
    expect(third.items.map((r) => r.run_id)).toEqual(newestFirst.slice(4));
    expect(third.next).toBeNull();

    const walked: string[] = [];
    for await (const r of client.runs({ q: t, limit: 2 })) walked.push(r.run_id);
    expect(walked).toEqual(newestFirst);

    const failed = await client.createRun({
      prompt: `paging ${t} failing`,
      plan: { steps: [{ step_number: 1, tool_name: "calculator", tool_input: { expression: "1/0" } }] },
    });
    // The list shows a finished run's final status within a second of its end (API.md).
    const onlyFailed = await poll("the failed run in the filtered list", async () => {
      const page = await client.listRuns({ q: t, status: "failed" });
      return page.items.length > 0 ? page : null;
    });
    expect(onlyFailed.items.map((r) => r.run_id)).toEqual([failed.run_id]);
    expect(onlyFailed.items[0]).toMatchObject({ status: "failed", step_count: 1 });
  });

  it("tools, health and metrics answer their contracts", async () => {
    const tools = await client.tools();
    const calculator = tools.find((t) => t.name === "calculator");
    expect(calculator?.input_schema.type).toBe("object");
    expect(calculator?.breaker.state).toBe("closed");
    expect(await client.health()).toMatchObject({ status: "healthy" });
    // Metrics read D1, which has a finished run about a second after it ended (the gate's archive write).
    const metrics = await poll("the archived runs in the metrics", async () => {
      const m = await client.metrics({ since: new Date(Date.now() - 3_600_000) });
      return m.runs.total > 0 ? m : null;
    });
    expect(metrics.runs.total).toBeGreaterThan(0);
    expect(metrics.tools.some((t) => t.tool === "calculator")).toBe(true);
  });
});

describe("admin", () => {
  it("createKey gives a working key of its own tenant; listKeys never shows the secret; revokeKey ends it", async () => {
    const tenant = `client-${tag()}`;
    const created = await client.admin.createKey({ tenant, name: "e2e", max_active_runs: 3 });
    expect(created.api_key).toMatch(/^crane_sk_/);
    const theirs = new CraneClient({ baseUrl: crane.url, apiKey: created.api_key });
    const mine = await client.createRun({ prompt: "calculate 1+1" });
    expect(((await rejection(theirs.getRun(mine.run_id))) as CraneError).status).toBe(404);
    expect((await theirs.createRun({ prompt: "calculate 2+2" })).result).toBe(4);

    const keys = await client.admin.listKeys(tenant);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ key_id: created.key_id, name: "e2e", revoked_at: null, max_active_runs: 3 });
    expect(JSON.stringify(keys)).not.toContain(created.api_key);

    await client.admin.revokeKey(created.key_id);
    expect(((await rejection(theirs.tools())) as CraneError).status).toBe(401);
    expect(((await rejection(client.admin.revokeKey(created.key_id))) as CraneError).status).toBe(404);
  });

  it("an API key in place of the admin token is a 403", async () => {
    const confused = new CraneClient({ baseUrl: crane.url, adminToken: "crane-dev-key" });
    expect(((await rejection(confused.admin.listKeys("dev"))) as CraneError).status).toBe(403);
  });
});

describe("watch", () => {
  it("yields the snapshot, then every event in order from after=0, and ends on the terminal event", async () => {
    const run = await client.createRun(chain("watch from zero"));
    const messages = await collect(client.watch(run.run_id, { after: 0 }));
    expect(messages[0]?.type).toBe("snapshot");
    const events = eventsOf(messages);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.at(-1)?.type).toBe("run.completed");
    expect(messages.at(-1)).toEqual({ type: "event", event: events.at(-1) });
    expect((await client.getRun(run.run_id)).result).toBe(900);
  });

  it("without after, starts at the snapshot: the events that follow continue its seq", async () => {
    const run = await client.createRun(chain("watch from now"));
    const messages = await collect(client.watch(run.run_id));
    const [snapshot] = messages;
    if (snapshot?.type !== "snapshot") throw new Error("the first message must be the snapshot");
    const events = eventsOf(messages);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => snapshot.seq + i + 1));
    expect(events.at(-1)?.type).toBe("run.completed");
  });

  it("a finished run gives its snapshot and ends", async () => {
    const run = await client.createRun({ prompt: "calculate 6*7" });
    const messages = await collect(client.watch(run.run_id));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ type: "snapshot", run: { status: "completed", result: 42 } });
  });

  it("a connection dropped in the middle of a run resumes with ?after=<last seq>: no gap, no duplicate", async () => {
    TappedSocket.reset();
    let droppedAt: number | null = null;
    // Drop the first socket when step 1 has succeeded: steps 2–4 are still to come.
    TappedSocket.tap = (socket, data) => {
      const m = JSON.parse(data) as LiveMessage;
      if (socket === TappedSocket.opened[0] && m.type === "event" && m.event.type === "step.succeeded") {
        droppedAt = m.event.seq;
        socket.drop();
      }
    };
    try {
      const run = await client.createRun(chain("watch through a dropped connection"));
      const states: string[] = [];
      const onConnection = (state: string) => states.push(state);
      const messages = await collect(tapped().watch(run.run_id, { after: 0, onConnection }));

      expect(droppedAt).not.toBeNull();
      // Told when each socket delivered, and when the first one dropped.
      expect(states.slice(0, 3)).toEqual(["open", "lost", "open"]);
      expect(states.at(-1)).toBe("open");
      expect(TappedSocket.opened.length).toBeGreaterThanOrEqual(2);
      expect(new URL(TappedSocket.opened[1]?.url ?? "").searchParams.get("after")).toBe(String(droppedAt));
      expect(messages.filter((m) => m.type === "snapshot")).toHaveLength(1);
      const events = eventsOf(messages);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.filter((e) => e.type === "step.succeeded").map((e) => e.step_number)).toEqual([1, 2, 3, 4]);
      expect(events.at(-1)?.type).toBe("run.completed");
      // What the client saw is the server's log, exactly.
      expect(events).toEqual(await client.events(run.run_id));
    } finally {
      TappedSocket.reset();
    }
  });

  it("a socket that fails before it opens is retried", async () => {
    TappedSocket.reset();
    TappedSocket.tap = () => {};
    const run = await client.createRun(chain("watch after a refused socket"));
    class FailsFirst extends TappedSocket {
      constructor(url: string, protocols: string[]) {
        super(url, protocols);
        // After the constructor returns, so that the client's listeners are in place.
        if (TappedSocket.opened.length === 1) setTimeout(() => this.drop(), 0);
      }
    }
    try {
      const flaky = new CraneClient({ baseUrl: crane.url, WebSocket: FailsFirst as unknown as typeof WebSocket });
      const events = eventsOf(await collect(flaky.watch(run.run_id, { after: 0 })));
      expect(TappedSocket.opened.length).toBeGreaterThanOrEqual(2);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.at(-1)?.type).toBe("run.completed");
    } finally {
      TappedSocket.reset();
    }
  });

  it("ends on the terminal event even when the socket never reports its close", async () => {
    TappedSocket.reset();
    TappedSocket.swallowClose = true;
    try {
      const run = await client.createRun(chain("watch with a close that never comes"));
      const events = eventsOf(await collect(tapped().watch(run.run_id, { after: 0 })));
      expect(events.at(-1)?.type).toBe("run.completed");
      expect(TappedSocket.opened).toHaveLength(1);
    } finally {
      TappedSocket.reset();
    }
  });

  it("an aborted watch ends quietly while the run goes on", async () => {
    const run = await client.createRun({
      prompt: "watch then abort",
      plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 2000 } }] },
    });
    const controller = new AbortController();
    const seen: LiveMessage[] = [];
    for await (const m of client.watch(run.run_id, { after: 0, signal: controller.signal })) {
      seen.push(m);
      if (m.type === "event" && m.event.type === "step.started") controller.abort();
    }
    expect(eventsOf(seen).at(-1)?.type).toBe("step.started");
    expect((await client.getRun(run.run_id)).status).toBe("running");
  });

  it("an unknown run, or a wrong key, rejects with the HTTP reason", async () => {
    const notFound = (await rejection(collect(client.watch("no-such-run", { backoffMs: 10 })))) as CraneError;
    expect(notFound.status).toBe(404);
    const run = await client.createRun({ prompt: "calculate 1+2" });
    const stranger = new CraneClient({ baseUrl: crane.url, apiKey: "not-a-key" });
    const refused = (await rejection(collect(stranger.watch(run.run_id, { backoffMs: 10 })))) as CraneError;
    expect(refused.status).toBe(401);
  });

  it("gives up on an unreachable server after its retries with a CraneConnectionError", async () => {
    const nowhere = new CraneClient({ baseUrl: "http://127.0.0.1:9" });
    const err = await rejection(collect(nowhere.watch("x", { retries: 2, backoffMs: 10 })));
    expect(err).toBeInstanceOf(CraneConnectionError);
  });
});

describe("the built bundle", () => {
  it("dist/client exports the same client, and carries no zod", async () => {
    const { readFile } = await import("node:fs/promises");
    const path = await import("node:path");
    const file = path.resolve(import.meta.dirname, "../../dist/client/index.js");
    const built = (await import(file)) as typeof import("../../src/client");
    const c = new built.CraneClient({ baseUrl: crane.url });
    const run = await c.createRun({ prompt: "calculate 3*3" });
    const events = eventsOf(await collect(c.watch(run.run_id, { after: 0 })));
    expect(events.at(-1)?.type).toBe("run.completed");
    const err = (await rejection(c.getRun("nope"))) as InstanceType<typeof built.CraneError>;
    expect(err).toBeInstanceOf(built.CraneError);
    expect(err.status).toBe(404);
    // Bundled, zod would be inlined rather than imported: no trace of it (ZodError, zod's names) at all.
    expect(await readFile(file, "utf8")).not.toMatch(/zod/i);
    const types = await readFile(path.resolve(import.meta.dirname, "../../dist/client/index.d.ts"), "utf8");
    expect(types).toMatch(/types\/client\/index\.js/);
  });
});
