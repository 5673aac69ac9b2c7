import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/api/middleware/auth";
import type { Problem } from "../../src/contracts/common";
import type { Run } from "../../src/contracts/run";
import worker from "../../src/index";
import { api, DEV_KEY, waitForRun } from "../helpers/api";
import { eventsOf, watch } from "../helpers/live";

const ADMIN = "crane-dev-admin";
const admin = (path: string, init: RequestInit & { json?: unknown } = {}) =>
  api(`/api/v1/admin${path}`, { ...init, headers: { ...init.headers, Authorization: `Bearer ${ADMIN}` } });

async function newKey(
  tenant: string,
  extra: Record<string, unknown> = {},
): Promise<{ key_id: string; api_key: string }> {
  const res = await admin("/api-keys", { method: "POST", json: { tenant, name: "test", ...extra } });
  expect(res.status).toBe(201);
  return (await res.json()) as { key_id: string; api_key: string };
}

const post = (key: string, json: unknown, headers: Record<string, string> = {}) =>
  api("/api/v1/runs", { method: "POST", key, json, headers });

describe("API keys and the admin token", () => {
  it("creates a key shown once, lists metadata only, and revokes it at once", async () => {
    const res = await admin("/api-keys", { method: "POST", json: { tenant: "acme", name: "ci" } });
    expect(res.status).toBe(201);
    const created = (await res.json()) as Record<string, unknown>;
    expect(created).toMatchObject({ tenant: "acme", name: "ci", revoked_at: null });
    expect(created.api_key).toMatch(/^crane_sk_[0-9a-f]{48}$/);
    const key = created.api_key as string;

    expect((await api("/api/v1/runs", { key })).status).toBe(200);
    const listed = (await (await admin("/api-keys?tenant=acme")).json()) as Record<string, unknown>[];
    expect(listed.map((k) => k.key_id)).toContain(created.key_id);
    expect(JSON.stringify(listed)).not.toContain(key);
    const stored = await env.DB.prepare("SELECT key_hash FROM api_keys WHERE key_id = ?")
      .bind(created.key_id)
      .first<{ key_hash: string }>();
    // Only the key's SHA-256 is stored.
    expect(stored?.key_hash).toBe(await sha256Hex(key));

    expect((await admin(`/api-keys/${created.key_id}`, { method: "DELETE" })).status).toBe(204);
    const after = await api("/api/v1/runs", { key });
    expect(after.status).toBe(401);
    expect(((await after.json()) as Problem).detail).toBe("Unknown API key");
    expect((await admin(`/api-keys/${created.key_id}`, { method: "DELETE" })).status).toBe(404);
  });

  it("closes the live streams a key holds open when it is revoked; another key's stream goes on", async () => {
    const tenant = `t-revoke-live-${crypto.randomUUID().slice(0, 8)}`;
    const revoked = await newKey(tenant);
    const kept = await newKey(tenant);
    const approvals = [1, 2].map((n) => ({
      step_number: n,
      tool_name: "approval",
      tool_input: { message: `step ${n}?` },
      depends_on: n === 1 ? [] : [1],
    }));
    const created = await post(kept.api_key, { prompt: "two approvals", plan: { steps: approvals } });
    const run = (await created.json()) as Run;
    const auth = (key: string) => ({ headers: { Authorization: `Bearer ${key}` } });
    const doomed = (await watch(run.run_id, auth(revoked.api_key))).session;
    const other = (await watch(run.run_id, auth(kept.api_key))).session;
    await doomed.received(1);
    await other.received(1);

    expect((await admin(`/api-keys/${revoked.key_id}`, { method: "DELETE" })).status).toBe(204);
    // Closed before the revocation answered: 1008, and nothing after it (the next callback URL included).
    expect(await doomed.closed).toBe(1008);
    const approved = await api(`/api/v1/runs/${run.run_id}/steps/1/approve`, { method: "POST", key: kept.api_key });
    expect(approved.status).toBe(200);
    await other.received(3);
    expect(eventsOf(other.messages).some((e) => e.type === "step.waiting" && e.step_number === 2)).toBe(true);
    expect(eventsOf(doomed.messages).some((e) => e.step_number === 2)).toBe(false);
    // The key opens no new stream.
    const again = await api(`/api/v1/runs/${run.run_id}/live`, {
      key: revoked.api_key,
      headers: { Upgrade: "websocket" },
    });
    expect(again.status).toBe(401);
    other.close();
  });

  it("answers an API key on an admin route with 403, a missing or wrong token with 401", async () => {
    expect((await api("/api/v1/admin/api-keys?tenant=x", { key: DEV_KEY })).status).toBe(403);
    expect((await api("/api/v1/admin/api-keys?tenant=x", { key: null })).status).toBe(401);
    expect((await api("/api/v1/admin/api-keys?tenant=x", { key: "wrong-admin" })).status).toBe(401);
  });

  it("validates key creation", async () => {
    for (const body of [
      {},
      { tenant: "a:b", name: "x" },
      { tenant: "x".repeat(65), name: "x" },
      { tenant: "t", name: "" },
    ]) {
      const res = await admin("/api-keys", { method: "POST", json: body });
      expect(res.status, JSON.stringify(body)).toBe(422);
    }
    // The detail names what is wrong, not only that something is missing.
    for (const [body, detail] of [
      [{ name: "x" }, "tenant is required"],
      [{ tenant: 123, name: "x" }, "tenant must be a string"],
      [{ tenant: "t" }, "name is required"],
      [{ tenant: "t", name: 5 }, "name must be a string"],
      [{ tenant: "t", name: "n".repeat(101) }, "name must be at most 100 characters"],
    ] as const) {
      const res = await admin("/api-keys", { method: "POST", json: body });
      expect(((await res.json()) as Problem).detail, JSON.stringify(body)).toContain(detail);
    }
  });

  it("refuses the development key and admin token outside ENVIRONMENT=development", async () => {
    const production = { ...env, ENVIRONMENT: "production" };
    const call = (path: string, auth: string) =>
      worker.fetch(
        new Request(`http://crane.test${path}`, { headers: { Authorization: `Bearer ${auth}` } }),
        production,
        createExecutionContext(),
      );
    expect((await call("/api/v1/runs", DEV_KEY)).status).toBe(401);
    expect((await call("/api/v1/tools", DEV_KEY)).status).toBe(401);
    expect((await call("/api/v1/admin/api-keys?tenant=dev", ADMIN)).status).toBe(401);
    // A real key still works there.
    const { api_key } = await newKey("prod-tenant");
    expect((await call("/api/v1/runs", api_key)).status).toBe(200);
  });
});

describe("tenant isolation", () => {
  it("tenant B cannot read, list, cancel, watch, or see the todos of tenant A", async () => {
    const a = (await newKey("tenant-a")).api_key;
    const b = (await newKey("tenant-b")).api_key;
    const res = await post(a, {
      prompt: "secret",
      plan: {
        steps: [
          { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text: "A's secret todo" } },
          { step_number: 2, tool_name: "sleep", tool_input: { ms: 1500 } },
        ],
      },
    });
    const { run_id } = (await res.json()) as Run;
    for (const [path, method] of [
      [`/api/v1/runs/${run_id}`, "GET"],
      [`/api/v1/runs/${run_id}/events`, "GET"],
      [`/api/v1/runs/${run_id}/cancel`, "POST"],
    ] as const) {
      const r = await api(path, { method, key: b });
      expect(r.status, path).toBe(404);
      expect(((await r.json()) as Problem).detail).toBe(`Run '${run_id}' not found`);
    }
    expect((await api(`/api/v1/runs/${run_id}/live`, { key: b, headers: { Upgrade: "websocket" } })).status).toBe(404);
    expect((await (await api("/api/v1/runs", { key: b })).json()) as unknown[]).toEqual([]);

    const bList = (await (await post(b, { prompt: "list todos" })).json()) as Run;
    const listed = await waitForRun(bList.run_id, 15_000, 20, b);
    expect((listed.result as { todos: { text: string }[] }).todos.map((t) => t.text)).not.toContain("A's secret todo");
    const aRun = await waitForRun(run_id, 15_000, 20, a);
    expect(aRun.status).toBe("completed");
  });
});

describe("rate limits and quotas", () => {
  it("limits requests per key with 429 and RateLimit headers, and recovers after the window", async () => {
    const { api_key } = await newKey("t-rate", { rate_limit: { requests: 3, window_s: 1 } });
    // Send until refused; the headers say which window each answer counted in, so a window that
    // rolls over during the burst cannot fool the test.
    const answers: Response[] = [];
    while (answers.at(-1)?.status !== 429 && answers.length < 20)
      answers.push(await api("/api/v1/runs", { key: api_key }));
    const limited = answers.at(-1) as Response;
    expect(limited.status).toBe(429);
    const lastThree = answers.slice(-4, -1);
    expect(lastThree.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(lastThree.map((r) => r.headers.get("RateLimit")?.match(/r=(\d+)/)?.[1])).toEqual(["2", "1", "0"]);
    expect(lastThree[0]?.headers.get("RateLimit-Policy")).toBe('"default";q=3;w=1');
    expect(limited.headers.get("Retry-After")).toBe("1");
    expect(limited.headers.get("Content-Type")).toBe("application/problem+json");
    expect(((await limited.json()) as Problem).detail).toMatch(/Rate limit of 3 requests per 1 s exceeded/);
    // The next window lets the key in again.
    const deadline = Date.now() + 5000;
    let again = await api("/api/v1/runs", { key: api_key });
    while (again.status === 429 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      again = await api("/api/v1/runs", { key: api_key });
    }
    expect(again.status).toBe(200);
  });

  it("admits a concurrent burst under the limit: requests waiting for a lease share it", async () => {
    // 200 per minute leases 10 at a time: 60 requests at once, each leasing its own slice, would
    // spend the window after 20 and refuse the other 40.
    const { api_key } = await newKey("t-burst", { rate_limit: { requests: 200, window_s: 60 } });
    const answers = await Promise.all(Array.from({ length: 60 }, () => api("/api/v1/runs", { key: api_key })));
    expect(answers.map((r) => r.status)).toEqual(Array(60).fill(200));
    const left = answers.map((r) => Number(r.headers.get("RateLimit")?.match(/r=(\d+)/)?.[1]));
    expect(Math.min(...left)).toBeGreaterThanOrEqual(200 - 60 - 10); // at most one slice unspent
  });

  it("caps a tenant's active runs with 429 and frees the slot when a run ends", async () => {
    const { api_key } = await newKey("t-quota", { max_active_runs: 1 });
    const slow = { prompt: "slow", plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 800 } }] } };
    const first = await post(api_key, slow);
    expect(first.status).toBe(201);
    const second = await post(api_key, slow);
    expect(second.status).toBe(429);
    expect(second.headers.get("Retry-After")).toBe("5");
    expect(((await second.json()) as Problem).detail).toBe(
      "Tenant 't-quota' already has 1 active runs; the limit for this key is 1. Retry when one finishes",
    );
    await waitForRun(((await first.json()) as Run).run_id, 15_000, 20, api_key);
    const deadline = Date.now() + 5000;
    let third = await post(api_key, slow);
    while (third.status === 429 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      third = await post(api_key, slow);
    }
    expect(third.status).toBe(201);
  });
});

describe("Idempotency-Key", () => {
  const body = { prompt: "calculate 6 * 7" };

  it("replays the same run for the same key and body", async () => {
    const first = await post(DEV_KEY, body, { "Idempotency-Key": "order-1" });
    const again = await post(DEV_KEY, body, { "Idempotency-Key": "order-1" });
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    const [a, b] = [(await first.json()) as Run, (await again.json()) as Run];
    expect(b.run_id).toBe(a.run_id);
    expect(again.headers.get("Location")).toBe(`/api/v1/runs/${a.run_id}`);
    const created = ((await (await api(`/api/v1/runs/${a.run_id}/events`)).json()) as { type: string }[]).filter(
      (e) => e.type === "run.created",
    );
    expect(created).toHaveLength(1);
  });

  it("a run created on a retry after a 429 with the same key is new, not replayed; the retry after that is", async () => {
    const { api_key } = await newKey("t-quota-replay", { max_active_runs: 1 });
    // A pure plan finishes inside its POST and takes no slot: only a plan that waits can be refused.
    const slow = { prompt: "slow", plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 800 } }] } };
    const busy = await post(api_key, slow);
    expect(busy.status).toBe(201);
    const refused = await post(api_key, slow, { "Idempotency-Key": "after-429" });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Idempotent-Replayed")).toBeNull();
    await waitForRun(((await busy.json()) as Run).run_id, 15_000, 20, api_key);
    const deadline = Date.now() + 5000;
    let created = await post(api_key, slow, { "Idempotency-Key": "after-429" });
    while (created.status === 429 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      created = await post(api_key, slow, { "Idempotency-Key": "after-429" });
    }
    expect(created.status).toBe(201);
    expect(created.headers.get("Idempotent-Replayed")).toBeNull();
    const again = await post(api_key, slow, { "Idempotency-Key": "after-429" });
    expect(again.status).toBe(201);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await again.json()) as Run).run_id).toBe(((await created.json()) as Run).run_id);
  });

  it("agrees on one run when the same key arrives concurrently", async () => {
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => post(DEV_KEY, body, { "Idempotency-Key": "race-1" })),
    );
    const ids = new Set(await Promise.all(answers.map(async (r) => ((await r.json()) as Run).run_id)));
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    expect(ids.size).toBe(1);
    // One of them created the run; the others are replays of it.
    expect(answers.filter((r) => r.headers.get("Idempotent-Replayed") === null)).toHaveLength(1);
    expect(answers.filter((r) => r.headers.get("Idempotent-Replayed") === "true")).toHaveLength(4);
  });

  it("rejects the same key with a different body (422) and a malformed key (400)", async () => {
    await post(DEV_KEY, body, { "Idempotency-Key": "order-2" });
    const clash = await post(DEV_KEY, { prompt: "calculate 1 + 1" }, { "Idempotency-Key": "order-2" });
    expect(clash.status).toBe(422);
    expect(((await clash.json()) as Problem).detail).toBe("Idempotency-Key was already used with a different body");
    expect((await post(DEV_KEY, body, { "Idempotency-Key": "x".repeat(256) })).status).toBe(400);
  });

  it("keeps keys per tenant", async () => {
    const other = (await newKey("t-idem")).api_key;
    const mine = (await (await post(DEV_KEY, body, { "Idempotency-Key": "shared-name" })).json()) as Run;
    const theirs = (await (await post(other, body, { "Idempotency-Key": "shared-name" })).json()) as Run;
    expect(theirs.run_id).not.toBe(mine.run_id);
  });
});
