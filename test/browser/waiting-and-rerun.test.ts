import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  createRun,
  finished,
  getRun,
  type LocalCrane,
  launchChromium,
  openTab,
  startCrane,
  type Tab,
  unexpected,
  until,
} from "./harness";

// API v1.1 from the console: deciding a waiting step, sending a signal, rerunning from a step.
let crane: LocalCrane;
let browser: Browser;

beforeAll(async () => {
  crane = await startCrane();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  crane?.dispose();
});

async function tab(): Promise<Tab> {
  return openTab(browser, crane.url);
}

function expectClean(t: Tab) {
  expect(t.offsite).toEqual([]);
  expect(unexpected(t.errors)).toEqual([]);
}

const approvalPlan = (message: string) => ({
  steps: [
    { step_number: 1, tool_name: "approval", tool_input: { message } },
    { step_number: 2, tool_name: "calculator", tool_input: { expression: "6*7" }, depends_on: [1] },
  ],
});

it("approving a waiting step from the run page completes the run", async () => {
  const run = await createRun(crane, { prompt: "approve then calculate", plan: approvalPlan("Ship it?") });
  const t = await tab();
  await t.page.goto(`${crane.url}/runs/${run.run_id}`);
  // The waiting step is selected by itself and shows what it waits for.
  const waiting = t.page.locator('[data-testid="waiting"]');
  await waiting.waitFor();
  expect(await waiting.textContent()).toContain("Ship it?");
  expect(await t.page.locator('[data-testid="dag-node-1"]').getAttribute("data-status")).toBe("waiting");
  await t.page.getByLabel("Comment or reason (optional)").fill("looks good");
  await waiting.getByRole("button", { name: "Approve" }).click();
  await t.page.locator('[data-run-status="completed"]').waitFor({ timeout: 30_000 });
  await t.page.locator('[data-testid="dag-node-2"][data-status="succeeded"]').waitFor();

  const done = await getRun(crane, run.run_id);
  expect(done.status).toBe("completed");
  expect(done.result).toBe(42);
  expect(done.execution_log[0]?.output).toMatchObject({ approved: true, comment: "looks good" });
  expectClean(t);
});

it("the approvals inbox lists a waiting approval and approves it in place", async () => {
  const message = `Release ${crypto.randomUUID().slice(0, 8)}?`;
  const run = await createRun(crane, { prompt: "inbox approval", plan: approvalPlan(message) });
  const t = await tab();
  await t.page.goto(`${crane.url}/approvals`);
  const card = t.page.locator(`li.approval[data-run-id="${run.run_id}"]`);
  await card.waitFor({ timeout: 30_000 });
  expect(await card.textContent()).toContain(message);
  await card.getByRole("button", { name: "Approve" }).click();
  await card.getByRole("status").waitFor();
  const done = await until("the run to finish", async () => {
    const r = await getRun(crane, run.run_id);
    return finished(r) ? r : null;
  });
  expect(done.status).toBe("completed");
  // The card stays, saying what was sent, through the page's own refreshes; the inbox no longer
  // lists it once the page is loaded again.
  expect(await card.getByRole("status").textContent()).toBe("Decision sent: approved.");
  await t.page.reload();
  await t.page.locator("#approvals-title").waitFor();
  await expect.poll(() => card.count(), { timeout: 15_000 }).toBe(0);
  expectClean(t);
});

it("rejecting from the run page fails the step with the reason", async () => {
  const run = await createRun(crane, { prompt: "reject", plan: approvalPlan("Delete everything?") });
  const t = await tab();
  await t.page.goto(`${crane.url}/runs/${run.run_id}`);
  const waiting = t.page.locator('[data-testid="waiting"]');
  await waiting.waitFor();
  await t.page.getByLabel("Comment or reason (optional)").fill("not today");
  await waiting.getByRole("button", { name: "Reject" }).click();
  await t.page.locator('[data-run-status="failed"]').waitFor({ timeout: 30_000 });
  await t.page.locator('[data-testid="dag-node-1"][data-status="failed"]').waitFor();
  expect((await getRun(crane, run.run_id)).execution_log[0]?.error).toContain("not today");
  expectClean(t);
});

it("a signal is sent from the run page to the step waiting for it", async () => {
  const run = await createRun(crane, {
    prompt: "wait for the signal go",
    plan: {
      steps: [
        { step_number: 1, tool_name: "signal", tool_input: { name: "go" } },
        {
          step_number: 2,
          tool_name: "text",
          tool_input: { operation: "uppercase", text: "{{steps.1.output.data.word}}" },
        },
      ],
    },
  });
  const t = await tab();
  await t.page.goto(`${crane.url}/runs/${run.run_id}`);
  await t.page.locator('[data-testid="waiting"]').waitFor();
  await t.page.getByLabel("Signal data (JSON, optional)").fill('{"word": "launched"}');
  await t.page.getByRole("button", { name: "Send signal 'go'" }).click();
  await t.page.locator('[data-run-status="completed"]').waitFor({ timeout: 30_000 });
  expect((await getRun(crane, run.run_id)).result).toBe("LAUNCHED");
  expectClean(t);
});

it("a rerun from a step, with its input edited on the page, makes a new run and leaves the original", async () => {
  const original = await createRun(crane, {
    prompt: "two calculations",
    plan: {
      steps: [
        { step_number: 1, tool_name: "calculator", tool_input: { expression: "2*3" } },
        { step_number: 2, tool_name: "calculator", tool_input: { expression: "{{steps.1.output}} + 1" } },
      ],
    },
  });
  await until("the original to finish", async () => (finished(await getRun(crane, original.run_id)) ? 1 : null));
  const t = await tab();
  await t.page.goto(`${crane.url}/runs/${original.run_id}`);
  await t.page.locator('[data-run-status="completed"]').waitFor();
  await t.page.locator('[data-testid="step-button-1"]').click();
  await t.page.getByRole("button", { name: "Rerun from this step…" }).click();
  const editor = t.page.getByLabel("Input of step 1 (references allowed)");
  expect(JSON.parse(await editor.inputValue())).toEqual({ expression: "2*3" });
  await editor.fill('{ "expression": "10*3" }');
  await t.page.getByRole("button", { name: "Rerun from step 1" }).click();
  await t.page.waitForURL((url) => url.pathname.startsWith("/runs/") && !url.pathname.endsWith(original.run_id));
  const rerunId = decodeURIComponent(new URL(t.page.url()).pathname.split("/")[2] ?? "");
  await t.page.locator('[data-run-status="completed"]').waitFor({ timeout: 30_000 });
  expect(await t.page.locator('[data-testid="run-result"]').textContent()).toBe("31");

  const rerun = await getRun(crane, rerunId);
  expect(rerun.rerun_of).toEqual({ run_id: original.run_id, from_step: 1 });
  expect(rerun.result).toBe(31);
  const unchanged = await getRun(crane, original.run_id);
  expect(unchanged.result).toBe(7);
  expectClean(t);
});

it("cancel and compensate from the run page undoes the succeeded step and shows the compensation", async () => {
  const text = `compensate ${crypto.randomUUID().slice(0, 8)}`;
  const run = await createRun(crane, {
    prompt: "add a todo then wait for a person",
    plan: {
      steps: [
        { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text } },
        // Waiting, not running: the run stays as it is until the button is clicked, however slow the page.
        { step_number: 2, tool_name: "approval", tool_input: { message: "keep it?" }, depends_on: [1] },
      ],
    },
  });
  const t = await tab();
  await t.page.goto(`${crane.url}/runs/${run.run_id}`);
  await t.page.locator('[data-testid="dag-node-2"][data-status="waiting"]').waitFor({ timeout: 30_000 });
  await t.page.getByRole("button", { name: "Cancel and compensate" }).click();
  await t.page.locator('[data-run-status="cancelled"]').waitFor({ timeout: 60_000 });
  const panel = t.page.locator("section.panel", { has: t.page.locator("#compensation-title") });
  await panel.locator('#compensation-title [data-status="completed"]').waitFor({ timeout: 60_000 });
  expect(await panel.locator("tbody tr").first().textContent()).toContain("#1");

  const done = await getRun(crane, run.run_id);
  expect(done.compensation?.status).toBe("completed");
  expect(done.compensation?.steps.map((s) => [s.step_number, s.status])).toEqual([[1, "succeeded"]]);
  expectClean(t);
});
