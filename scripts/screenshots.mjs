// Screenshots of every console page and /docs into docs/screenshots/, in Debian's headless
// Chromium. Starts its own local Crane (as the browser tests do) unless CRANE_URL names one that
// runs with ENVIRONMENT=development. Run: npm run build && node scripts/screenshots.mjs
import { mkdirSync } from "node:fs";
import path from "node:path";
import { DESKTOP, launchChromium, openTab, PHONE, startCrane } from "../test/browser/harness.ts";

const OUT = path.resolve(import.meta.dirname, "../docs/screenshots");
mkdirSync(OUT, { recursive: true });

const crane = process.env.CRANE_URL ? null : await startCrane();
const origin = process.env.CRANE_URL ?? crane.url;
const api = async (p, body) => {
  const res = await fetch(`${origin}/api/v1${p}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { Authorization: "Bearer crane-dev-key", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};
const waitFor = async (what, fn, ms = 30_000) => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${what}`);
};

const browser = await launchChromium();
try {
  // Some history: a calculation, a todo flow, a failure, and a parallel plan.
  await api("/runs", { prompt: "calculate (41*7)+13" });
  await api("/runs", { prompt: "add todo ship the console then complete it then list todos" });
  await api("/runs", { prompt: "calculate 1/0" });
  const parallel = (
    await api("/runs", {
      prompt: "three slow calculations and their sum",
      plan: {
        steps: [
          { step_number: 1, tool_name: "sleep", tool_input: { ms: 1200 } },
          { step_number: 2, tool_name: "sleep", tool_input: { ms: 1800 } },
          { step_number: 3, tool_name: "sleep", tool_input: { ms: 2400 } },
          {
            step_number: 4,
            tool_name: "calculator",
            tool_input: {
              expression: "{{steps.1.output.slept_ms}} + {{steps.2.output.slept_ms}} + {{steps.3.output.slept_ms}}",
            },
          },
          { step_number: 5, tool_name: "todo_store", tool_input: { action: "add", text: "sum is {{steps.4.output}}" } },
          { step_number: 6, tool_name: "todo_store", tool_input: { action: "list" } },
        ],
      },
    })
  ).body;
  // A step waiting for approval, where the server supports it (API v1.1).
  const approval = await api("/runs", {
    prompt: "ask for approval to deploy the console then calculate 6*7",
    plan: {
      steps: [
        { step_number: 1, tool_name: "approval", tool_input: { message: "Deploy the console to production?" } },
        { step_number: 2, tool_name: "calculator", tool_input: { expression: "6*7" }, depends_on: [1] },
      ],
    },
  });

  const shoot = async (name, url, viewport, ready) => {
    const tab = await openTab(browser, origin, { viewport });
    await tab.page.goto(`${origin}${url}`);
    await ready(tab.page);
    await tab.page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: viewport === PHONE });
    if (tab.offsite.length) throw new Error(`${name}: requests to other origins: ${tab.offsite.join(", ")}`);
    await tab.context.close();
    console.log(`docs/screenshots/${name}.png`);
  };

  // The run page while the parallel steps run, and once it finished.
  await shoot("run-live", `/runs/${parallel.run_id}`, DESKTOP, async (page) => {
    await page.locator('[data-testid="dag-node-2"][data-status="running"]').waitFor();
  });
  await waitFor(
    "the parallel run to finish",
    async () => (await api(`/runs/${parallel.run_id}`)).body.status === "completed",
  );
  await shoot("run", `/runs/${parallel.run_id}`, DESKTOP, async (page) => {
    await page.locator('[data-testid="dag-node-6"][data-status="succeeded"]').waitFor();
    await page.locator('[data-testid="step-button-4"]').click();
    await page.locator('[data-testid="step-output"]').waitFor();
  });
  await shoot("run-phone", `/runs/${parallel.run_id}`, PHONE, async (page) => {
    await page.locator('[data-testid="dag-node-6"][data-status="succeeded"]').waitFor();
  });
  await shoot("runs", "/", DESKTOP, async (page) => {
    await page.locator(`tr[data-run-id="${parallel.run_id}"]`).waitFor();
  });
  await shoot("runs-phone", "/", PHONE, async (page) => {
    await page.locator(`tr[data-run-id="${parallel.run_id}"]`).waitFor();
  });
  if (approval.status === 201) {
    await shoot("run-waiting", `/runs/${approval.body.run_id}`, DESKTOP, async (page) => {
      await page.locator('[data-testid="waiting"]').waitFor();
    });
  }
  await shoot("approvals", "/approvals", DESKTOP, async (page) => {
    await page.locator("h1", { hasText: "Approvals" }).waitFor();
    await page.locator(".card, .empty, .problem").first().waitFor();
  });
  await shoot("metrics", "/metrics", DESKTOP, async (page) => {
    await page.locator("table.metrics, .empty").first().waitFor();
    await page.locator(".chart canvas").first().waitFor();
  });
  await shoot("tools", "/tools", DESKTOP, async (page) => {
    await page.locator('[data-tool="calculator"]').waitFor();
  });
  await shoot("docs", "/docs", DESKTOP, async (page) => {
    await page.getByText("List runs", { exact: false }).first().waitFor({ timeout: 30_000 });
  });

  // The budget: first render of a run page (navigation start → every node of its graph drawn),
  // in a fresh browser context each time (empty cache), signed in with the development key.
  const times = [];
  for (let i = 0; i < 5; i++) {
    const tab = await openTab(browser, origin);
    await tab.page.goto(`${origin}/runs/${parallel.run_id}`);
    // Checked on every animation frame inside the page, so the time is the page's own.
    const at = await tab.page.waitForFunction(
      () =>
        document.querySelector('[data-testid="dag-node-6"][data-status="succeeded"]') !== null &&
        Math.round(performance.now()),
      undefined,
      { polling: "raf" },
    );
    times.push(await at.jsonValue());
    await tab.context.close();
  }
  times.sort((a, b) => a - b);
  console.log(`first render of a run page: median ${times[2]} ms (runs: ${times.join(", ")} ms)`);
} finally {
  await browser.close();
  crane?.kill();
}
