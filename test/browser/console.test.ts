import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRun,
  DESKTOP,
  finished,
  getRun,
  type LocalCrane,
  launchChromium,
  openTab,
  PHONE,
  startCrane,
  type Tab,
  unexpected,
  until,
} from "./harness";

// The console against a real `wrangler dev` (static assets, API, live WebSocket, D1) in Debian's
// headless Chromium. Every page refuses requests to other origins and records them.
let crane: LocalCrane;
let browser: Browser;
const tabs: Tab[] = [];

beforeAll(async () => {
  // Finished runs leave their Durable Object 1.5 s after archiving: later reads come from D1.
  crane = await startCrane({ RUN_RETENTION_MS: "1500", LOG_LEVEL: "info" });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  crane?.dispose();
});

async function tab(opts: Parameters<typeof openTab>[2] = {}): Promise<Tab> {
  const t = await openTab(browser, crane.url, opts);
  tabs.push(t);
  return t;
}

/** Nothing from another origin, no script error, no CSP refusal. */
function expectClean(t: Tab) {
  expect(t.offsite).toEqual([]);
  expect(unexpected(t.errors)).toEqual([]);
}

/** An approval holds the run until the page is watching; then three sleeps in parallel and their sum. */
const PARALLEL_PLAN = {
  steps: [
    { step_number: 1, tool_name: "approval", tool_input: { message: "start the sleeps?" } },
    { step_number: 2, tool_name: "sleep", tool_input: { ms: 2500 }, depends_on: [1] },
    { step_number: 3, tool_name: "sleep", tool_input: { ms: 2500 }, depends_on: [1] },
    { step_number: 4, tool_name: "sleep", tool_input: { ms: 2500 }, depends_on: [1] },
    {
      step_number: 5,
      tool_name: "calculator",
      tool_input: {
        expression: "{{steps.2.output.slept_ms}} + {{steps.3.output.slept_ms}} + {{steps.4.output.slept_ms}}",
      },
    },
  ],
};

describe("assets", () => {
  it("the console's JavaScript stays within 300 KB gzip", () => {
    const dir = path.resolve(import.meta.dirname, "../../dist/public/assets");
    const files = readdirSync(dir).filter((f) => f.endsWith(".js"));
    expect(files.length).toBeGreaterThan(0);
    const gzip = files.reduce((n, f) => n + gzipSync(readFileSync(path.join(dir, f)), { level: 9 }).length, 0);
    expect(gzip).toBeLessThanOrEqual(300 * 1024);
  });

  it("every console route and /docs is served with a Content-Security-Policy of Crane's origin only", async () => {
    for (const p of ["/", "/runs/some-run", "/approvals", "/metrics", "/tools", "/docs"]) {
      const res = await fetch(`${crane.url}${p}`);
      expect(res.status, p).toBe(200);
      expect(res.headers.get("content-type"), p).toMatch(/^text\/html/);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp, p).toMatch(/default-src 'self'/);
      expect(csp, p).toMatch(/script-src 'self';/);
      expect(csp, p).toMatch(/connect-src 'self';/);
      // No host, scheme wildcard or eval anywhere in the policy.
      expect(csp, p).not.toMatch(/https?:|wss?:|\*|unsafe-eval/);
      await res.body?.cancel();
    }
    // The API's own paths are the Worker's, not the console's: an unknown one is a 404 problem.
    for (const p of ["/api", "/api/", "/api/v2/runs"]) {
      const res = await fetch(`${crane.url}${p}`);
      expect(res.status, p).toBe(404);
      expect(res.headers.get("content-type"), p).toBe("application/problem+json");
      await res.body?.cancel();
    }
    const html = await (await fetch(`${crane.url}/`)).text();
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });
});

describe("runs", () => {
  it("the runs page lists a run created through the API, and a new run appears without a reload", async () => {
    const first = await createRun(crane, { prompt: "calculate 6*7" });
    const t = await tab();
    await t.page.goto(`${crane.url}/`);
    const row = t.page.locator(`tr[data-run-id="${first.run_id}"]`);
    await row.waitFor();
    await expect.poll(() => row.locator(".status").getAttribute("data-status")).toBe("completed");
    expect(await row.textContent()).toContain("calculate 6*7");
    // The session signed in by itself with the development key.
    expect(await t.page.evaluate(() => sessionStorage.getItem("crane.apiKey"))).toBe("crane-dev-key");

    await t.page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 1;
    });
    const second = await createRun(crane, { prompt: "calculate 1+2 and calculate 3+4" });
    await t.page.locator(`tr[data-run-id="${second.run_id}"]`).waitFor();
    expect(await t.page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(1);

    // Filters go to the API: a failed run only under status=failed.
    const failed = await createRun(crane, { prompt: "calculate 1/0" });
    await t.page.getByLabel("Status").selectOption("failed");
    await t.page.locator(`tr[data-run-id="${failed.run_id}"]`).waitFor();
    await expect.poll(() => t.page.locator(`tr[data-run-id="${first.run_id}"]`).count()).toBe(0);
    expect(new URL(t.page.url()).searchParams.get("status")).toBe("failed");

    // The text box shows the filter in the URL, also when the URL changes under the page.
    const box = t.page.getByLabel("Prompt contains");
    await box.fill("calculate");
    await t.page.getByRole("button", { name: "Filter", exact: true }).click();
    await expect.poll(() => new URL(t.page.url()).searchParams.get("q")).toBe("calculate");
    await t.page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Runs" }).click();
    await expect.poll(() => new URL(t.page.url()).search).toBe("");
    await expect.poll(() => box.inputValue()).toBe("");
    await t.page.goBack();
    await expect.poll(() => box.inputValue()).toBe("calculate");
    expectClean(t);
  });

  it("a run page draws the parallel DAG and its nodes turn to succeeded live", async () => {
    const run = await createRun(crane, { prompt: "three sleeps and a sum", plan: PARALLEL_PLAN });
    const t = await tab();
    await t.page.goto(`${crane.url}/runs/${run.run_id}`);
    const node = (n: number) => t.page.locator(`[data-testid="dag-node-${n}"]`);
    await node(5).waitFor();
    // An approval, three independent steps after it, one joining step: edges 1→2, 1→3, 1→4,
    // 2→5, 3→5, 4→5 and nothing between 2, 3 and 4.
    // (xyflow draws the edges once it has measured the nodes.)
    await expect
      .poll(async () =>
        (
          await t.page.locator(".react-flow__edge").evaluateAll((els) => els.map((e) => e.getAttribute("data-id")))
        ).sort(),
      )
      .toEqual(["1-2", "1-3", "1-4", "2-5", "3-5", "4-5"]);
    await t.page.locator('[data-testid="dag-node-1"][data-status="waiting"]').waitFor({ timeout: 20_000 });
    await t.page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 1;
    });
    // The page is watching: let the sleeps go.
    const approved = await fetch(`${crane.url}/api/v1/runs/${run.run_id}/steps/1/approve`, {
      method: "POST",
      headers: { Authorization: "Bearer crane-dev-key", "Content-Type": "application/json" },
      body: "{}",
    });
    expect(approved.status).toBe(200);
    // The three sleeps run at the same time, as the page shows it.
    await t.page.waitForFunction(
      () =>
        [2, 3, 4].every(
          (n) => document.querySelector(`[data-testid="dag-node-${n}"]`)?.getAttribute("data-status") === "running",
        ),
      undefined,
      { timeout: 20_000 },
    );
    expect(await node(5).getAttribute("data-status")).toBe("pending");
    expect(await node(2).textContent()).toContain("running");
    for (const n of [1, 2, 3, 4, 5]) {
      await t.page.locator(`[data-testid="dag-node-${n}"][data-status="succeeded"]`).waitFor({ timeout: 30_000 });
    }
    expect(await node(5).textContent()).toContain("succeeded");
    await t.page.locator('[data-run-status="completed"]').waitFor();
    expect(await t.page.locator('[data-testid="run-result"]').textContent()).toBe("7500");
    // Live over the WebSocket, not by reloading.
    expect(await t.page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(1);
    expect(t.sockets.some((u) => u.includes(`/api/v1/runs/${run.run_id}/live`))).toBe(true);

    // The selected step's panel: the resolved input and the output.
    await t.page.locator('[data-testid="step-button-5"]').click();
    await expect.poll(() => t.page.locator('[data-testid="step-input"]').textContent()).toContain("2500 + 2500 + 2500");
    expect(await t.page.locator('[data-testid="step-output"]').textContent()).toBe("7500");
    // The timeline has a running segment for each step.
    expect(await t.page.locator(".timeline .seg-running").count()).toBeGreaterThanOrEqual(4);
    expectClean(t);
  });

  it("the live badge says when the stream dropped and is reconnecting, and live again once it is back", async () => {
    const run = await createRun(crane, {
      prompt: "a wait to watch",
      plan: { steps: [{ step_number: 1, tool_name: "approval", tool_input: { message: "go?" } }] },
    });
    const t = await tab();
    let connections = 0;
    let mocked: { close: () => Promise<void> } | null = null;
    // 1st socket: the real stream, dropped after its first message. 2nd: a socket that opens and
    // says nothing (the server unreachable behind a proxy, say). 3rd: the real stream again.
    await t.page.routeWebSocket(/\/live/, (ws) => {
      connections++;
      if (connections === 2) {
        mocked = ws;
        return;
      }
      const server = ws.connectToServer();
      const drop = connections === 1;
      let dropped = false;
      server.onMessage((m) => {
        if (dropped) return;
        ws.send(m);
        if (drop) {
          dropped = true;
          void ws.close({ code: 1011, reason: "dropped by the test" });
        }
      });
    });
    await t.page.goto(`${crane.url}/runs/${run.run_id}`);
    const badge = t.page.locator(".run-state .live");
    // The page loads, opens the stream, gets its snapshot, loses it and reconnects: allow a slow machine.
    await expect.poll(() => connections, { timeout: 15_000 }).toBe(2);
    await expect.poll(() => badge.textContent(), { timeout: 15_000 }).toBe("connection lost, reconnecting…");
    await (mocked as { close: () => Promise<void> } | null)?.close();
    await expect.poll(() => connections, { timeout: 15_000 }).toBe(3);
    await expect.poll(() => badge.textContent()).toBe("live");
    const approved = await fetch(`${crane.url}/api/v1/runs/${run.run_id}/steps/1/approve`, {
      method: "POST",
      headers: { Authorization: "Bearer crane-dev-key" },
    });
    expect(approved.status).toBe(200);
    await t.page.locator('[data-run-status="completed"]').waitFor();
    await expect.poll(() => badge.textContent()).toBe("not live");
    expectClean(t);
  });

  it("a 50-step plan's graph stays legible: steps at a readable zoom, zoom buttons, the legend below it", async () => {
    const steps = Array.from({ length: 50 }, (_, i) => ({
      step_number: i + 1,
      tool_name: "calculator",
      tool_input: { expression: `${i} + 1` },
      ...(i === 0 ? {} : { depends_on: [i < 10 ? 1 : 2 + (i % 8)] }),
    }));
    const run = await createRun(crane, { prompt: "fifty steps", plan: { steps } });
    const t = await tab({ viewport: DESKTOP });
    await t.page.goto(`${crane.url}/runs/${run.run_id}`);
    await t.page.locator('[data-testid="dag-node-50"]').waitFor({ state: "attached" });
    await t.page.getByRole("button", { name: "Zoom in" }).waitFor();
    const zoom = async () =>
      Number(
        /scale\(([\d.]+)\)/.exec((await t.page.locator(".react-flow__viewport").getAttribute("style")) ?? "")?.[1] ?? 0,
      );
    await expect.poll(zoom).toBeGreaterThanOrEqual(0.55);
    const dag = await t.page.locator(".dag").boundingBox();
    const legend = await t.page.locator('[aria-label="Edge kinds"]').boundingBox();
    const buttons = await t.page.locator('[aria-label="Graph zoom"]').boundingBox();
    expect(dag && legend && buttons && Math.min(legend.y, buttons.y) >= dag.y + dag.height).toBe(true);
    // "Whole plan" shows all of it, however small; the zoom buttons zoom.
    await t.page.getByRole("button", { name: "Whole plan" }).click();
    await expect.poll(zoom).toBeLessThan(0.55);
    const whole = await zoom();
    await t.page.getByRole("button", { name: "Zoom in" }).click();
    await expect.poll(zoom).toBeGreaterThan(whole);
    expectClean(t);
  });

  it("cancel from the run page cancels a running run", async () => {
    const run = await createRun(crane, {
      prompt: "a long sleep",
      plan: { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 60_000 } }] },
      options: { step_timeout_ms: 120_000 },
    });
    const t = await tab();
    await t.page.goto(`${crane.url}/runs/${run.run_id}`);
    await t.page.locator('[data-testid="dag-node-1"][data-status="running"]').waitFor();
    await t.page.getByRole("button", { name: "Cancel", exact: true }).click();
    await t.page.locator('[data-run-status="cancelled"]').waitFor();
    expect((await getRun(crane, run.run_id)).status).toBe("cancelled");
    expect(await t.page.locator('[data-testid="dag-node-1"]').getAttribute("data-status")).toBe("cancelled");
    expectClean(t);
  });

  it("steps are chosen with the keyboard, on the graph and in the step list", async () => {
    const run = await createRun(crane, { prompt: "calculate 2*21 then uppercase done" });
    await until("the run to finish", async () => ((await getRun(crane, run.run_id)).status === "completed" ? 1 : null));
    const t = await tab();
    await t.page.goto(`${crane.url}/runs/${run.run_id}`);
    await t.page.locator('[data-testid="step-panel"]').waitFor();
    await t.page.locator('.react-flow__node[data-id="2"]').focus();
    await t.page.keyboard.press("Enter");
    await expect.poll(() => t.page.locator("#step-title").textContent()).toContain("Step 2");
    await t.page.locator('[data-testid="step-button-1"]').focus();
    await t.page.keyboard.press("Enter");
    await expect.poll(() => t.page.locator("#step-title").textContent()).toContain("Step 1");
    expectClean(t);
  });

  it("an unknown run shows the API's problem detail, not a blank page", async () => {
    const t = await tab();
    await t.page.goto(`${crane.url}/runs/no-such-run`);
    const alert = t.page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toContain("Run 'no-such-run' not found");
    expect(t.offsite).toEqual([]);
  });

  it("the console still shows a run after it left its Durable Object (reads from D1)", async () => {
    const run = await createRun(crane, { prompt: "calculate 20+22 then reverse archived" });
    await until("the run to finish", async () => (finished(await getRun(crane, run.run_id)) ? 1 : null));
    await until(
      "the run's storage to be deleted after retention",
      async () =>
        crane.output
          .split("\n")
          .some((l) => l.includes("run storage deleted after retention") && l.includes(run.run_id))
          ? 1
          : null,
      60_000,
    );
    const t = await tab();
    await t.page.goto(`${crane.url}/runs/${run.run_id}`);
    await t.page.locator('[data-run-status="completed"]').waitFor();
    await t.page.locator('[data-testid="dag-node-2"][data-status="succeeded"]').waitFor();
    expect(await t.page.locator('[data-testid="run-result"]').textContent()).toBe('"devihcra"');
    // Its events too (the timeline and the event list).
    await t.page.locator(".all-events summary").click();
    await expect.poll(() => t.page.locator(".all-events tbody tr").count()).toBeGreaterThan(4);
    expectClean(t);
  });
});

describe("other pages", () => {
  it("the tools page shows the catalog with each input schema and breaker state", async () => {
    const t = await tab();
    await t.page.goto(`${crane.url}/tools`);
    const card = t.page.locator('[data-tool="calculator"]');
    await card.waitFor();
    expect(await card.textContent()).toContain("breaker closed");
    await card.locator("summary").click();
    expect(await card.locator("pre").textContent()).toContain('"expression"');
    for (const tool of ["todo_store", "text", "sleep"]) await t.page.locator(`[data-tool="${tool}"]`).waitFor();
    expectClean(t);
  });

  it("the metrics page shows success rate and p50/p95/p99 per tool, with charts", async () => {
    const run = await createRun(crane, { prompt: "calculate 3*3" });
    await until("the run to be listed as finished", async () => (finished(await getRun(crane, run.run_id)) ? 1 : null));
    const t = await tab();
    await t.page.goto(`${crane.url}/metrics`);
    const row = t.page.locator('table.metrics tr[data-tool="calculator"]');
    await row.waitFor();
    expect(await row.textContent()).toMatch(/p50 .*p95 .*p99 /);
    expect(await row.textContent()).toMatch(/\d+(\.\d)? %/);
    expect(await t.page.locator(".chart canvas").count()).toBeGreaterThanOrEqual(2);
    await t.page.getByLabel("Window").selectOption("24h");
    await row.waitFor();
    expectClean(t);
  });

  it("a wrong key asks to sign in with the API's detail; the right one signs in", async () => {
    const t = await tab({ apiKey: "not-a-key" });
    await t.page.goto(`${crane.url}/tools`);
    await t.page.getByRole("alert").waitFor();
    expect(await t.page.getByRole("alert").textContent()).toContain("Unknown API key");
    await t.page.getByLabel("API key").fill("crane-dev-key");
    await t.page.getByRole("button", { name: "Sign in" }).click();
    await t.page.locator('[data-tool="calculator"]').waitFor();
    expect(await t.page.evaluate(() => sessionStorage.getItem("crane.apiKey"))).toBe("crane-dev-key");
    expect(t.offsite).toEqual([]);
  });

  it("a key typed at sign-in and revoked later brings the sign-in form back, with the API's detail", async () => {
    const admin = (path: string, init: RequestInit = {}) =>
      fetch(`${crane.url}/api/v1/admin${path}`, {
        ...init,
        headers: { Authorization: "Bearer crane-dev-admin", "Content-Type": "application/json" },
      });
    const created = await admin("/api-keys", {
      method: "POST",
      body: JSON.stringify({ tenant: "t-console-revoke", name: "console" }),
    });
    expect(created.status).toBe(201);
    const { api_key, key_id } = (await created.json()) as { api_key: string; key_id: string };
    const t = await tab({ apiKey: "not-a-key" });
    await t.page.goto(`${crane.url}/tools`);
    await t.page.getByLabel("API key").fill(api_key);
    await t.page.getByRole("button", { name: "Sign in" }).click();
    await t.page.locator('[data-tool="calculator"]').waitFor();
    expect((await admin(`/api-keys/${key_id}`, { method: "DELETE" })).status).toBe(204);
    // The next request the page makes is refused: the form comes back, and the key is forgotten.
    await t.page.getByRole("link", { name: "Runs" }).first().click();
    await t.page.getByLabel("API key").waitFor();
    expect(await t.page.getByRole("alert").textContent()).toContain("Unknown API key");
    expect(await t.page.evaluate(() => sessionStorage.getItem("crane.apiKey"))).toBeNull();
    // A reload keeps asking: a development Worker's key does not sign the tab into another tenant.
    await t.page.reload();
    await t.page.getByLabel("API key").waitFor();
    expect(await t.page.getByRole("button", { name: "Sign out" }).count()).toBe(0);
  });

  it("after Sign out the tab asks for a key, even where the development key would sign in by itself", async () => {
    const t = await tab();
    await t.page.goto(`${crane.url}/tools`);
    await t.page.locator('[data-tool="calculator"]').waitFor();
    await t.page.getByRole("button", { name: "Sign out" }).click();
    await t.page.getByLabel("API key").waitFor();
    await t.page.reload();
    await t.page.getByLabel("API key").waitFor();
    expect(await t.page.locator('[data-tool="calculator"]').count()).toBe(0);
    await t.page.getByLabel("API key").fill("crane-dev-key");
    await t.page.getByRole("button", { name: "Sign in" }).click();
    await t.page.locator('[data-tool="calculator"]').waitFor();
    await t.page.reload();
    await t.page.locator('[data-tool="calculator"]').waitFor();
    expectClean(t);
  });

  it("pages fit a phone-width screen and 1280×800 without sideways scrolling, long words in run data too", async () => {
    const run = await createRun(crane, { prompt: "calculate 1+1 and calculate 2+2 then list todos" });
    // Words of thousands of letters: a prompt, a waiting approval's message and its step's reasoning,
    // and a rejected one's reason (the run's error).
    const long = (c: string, n: number) => c.repeat(n);
    const approval = (message: string) => ({
      step_number: 1,
      tool_name: "approval",
      tool_input: { message },
      reasoning: long("R", 1000),
    });
    const waiting = await createRun(crane, { prompt: long("P", 1990), plan: { steps: [approval(long("M", 2000))] } });
    const rejected = await createRun(crane, { prompt: "reject me", plan: { steps: [approval("ok?")] } });
    const res = await fetch(`${crane.url}/api/v1/runs/${rejected.run_id}/steps/1/reject`, {
      method: "POST",
      headers: { Authorization: "Bearer crane-dev-key", "Content-Type": "application/json" },
      body: JSON.stringify({ reason: long("Z", 2000) }),
    });
    expect(res.status).toBe(200);
    const pages = [
      "/",
      `/runs/${run.run_id}`,
      `/runs/${waiting.run_id}`,
      `/runs/${rejected.run_id}`,
      "/tools",
      "/metrics",
      "/approvals",
    ];
    for (const viewport of [PHONE, DESKTOP]) {
      const t = await tab({ viewport });
      for (const p of pages) {
        await t.page.goto(`${crane.url}${p}`);
        await t.page.locator("main h1").first().waitFor();
        await t.page.waitForLoadState("networkidle");
        // The long prompt's full text, shown on demand, wraps too.
        if (p.startsWith(`/runs/${waiting.run_id}`)) await t.page.locator(".full-prompt summary").click();
        const overflow = await t.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow, `${p} at ${viewport.width}px`).toBeLessThanOrEqual(0);
      }
      expect(t.offsite).toEqual([]);
    }
  });

  it("a bidirectional override in a prompt does not reverse the console's own words beside it", async () => {
    const run = await createRun(crane, {
      prompt: "refund order 42 \u202e",
      plan: { steps: [{ step_number: 1, tool_name: "approval", tool_input: { message: "approve refund \u202e" } }] },
    });
    const t = await tab();
    await t.page.goto(`${crane.url}/approvals`);
    const meta = t.page.locator(`li[data-run-id="${run.run_id}"] .meta`);
    await meta.waitFor();
    // Where "step" is drawn, letter by letter: left to right unless the override leaked out of the link.
    const xs = await meta.evaluate((el) => {
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const at = n.textContent?.indexOf("step") ?? -1;
        if (at < 0) continue;
        return [0, 1, 2, 3].map((i) => {
          const r = document.createRange();
          r.setStart(n, at + i);
          r.setEnd(n, at + i + 1);
          return r.getBoundingClientRect().left;
        });
      }
      return [];
    });
    expect(xs).toHaveLength(4);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
    expectClean(t);
  });
});

describe("/docs", () => {
  it("/docs renders the API reference offline: no request leaves Crane's origin", async () => {
    const t = await tab();
    const res = await t.page.goto(`${crane.url}/docs`);
    expect(res?.status()).toBe(200);
    expect(res?.url()).toBe(`${crane.url}/docs`);
    await t.page.getByText("List runs").first().waitFor({ timeout: 60_000 });
    await t.page.waitForLoadState("networkidle");
    expect(await t.page.locator("body").textContent()).toContain("/api/v1/runs");
    expectClean(t);
  });
});
