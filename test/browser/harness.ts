// Shared by the browser tests and scripts/screenshots.mjs (which Node runs with type stripping,
// hence the explicit .ts extensions): a local Crane, Debian's Chromium through playwright-core,
// and pages that refuse — and record — every request to another origin.
import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { LocalCrane } from "../../scripts/local-wrangler.ts";
import type { Run } from "../../src/contracts/run.ts";

/** Debian's `chromium` package; never a downloaded browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A page plus what it tried that it should not have: other origins, script errors, CSP refusals. */
export interface Tab {
  page: Page;
  context: BrowserContext;
  /** Requests to any origin but Crane's (each was refused). */
  offsite: string[];
  /** Uncaught errors and console errors (a CSP refusal is one). */
  errors: string[];
  /** WebSocket URLs the page opened. */
  sockets: string[];
}

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export async function openTab(
  browser: Browser,
  origin: string,
  opts: { viewport?: { width: number; height: number }; apiKey?: string } = {},
): Promise<Tab> {
  const context = await browser.newContext({ viewport: opts.viewport ?? DESKTOP, serviceWorkers: "block" });
  const page = await context.newPage();
  const tab: Tab = { page, context, offsite: [], errors: [], sockets: [] };
  const own = new URL(origin).origin;
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (/^https?:/.test(url) && new URL(url).origin !== own) {
      tab.offsite.push(url);
      return route.abort("blockedbyclient");
    }
    return route.continue();
  });
  page.on("console", (m) => {
    if (m.type() === "error") tab.errors.push(m.text());
  });
  page.on("pageerror", (e) => tab.errors.push(`pageerror: ${e.message}`));
  page.on("websocket", (ws) => tab.sockets.push(ws.url()));
  if (opts.apiKey !== undefined) {
    const key = opts.apiKey;
    // Once per tab, as if the user had signed in with this key earlier in the session.
    await context.addInitScript((k) => {
      if (!sessionStorage.getItem("test.seeded")) {
        sessionStorage.setItem("test.seeded", "1");
        sessionStorage.setItem("crane.apiKey", k);
      }
    }, key);
  }
  return tab;
}

/** Errors that are not the page's fault: none are expected, so every one is reported. */
export function unexpected(errors: readonly string[]): string[] {
  return errors.filter((e) => !/favicon/.test(e));
}

export async function startCrane(vars: Record<string, string> = {}): Promise<LocalCrane> {
  const crane = new LocalCrane();
  crane.migrate();
  await crane.start(vars);
  return crane;
}

export async function createRun(crane: LocalCrane, body: unknown): Promise<Run> {
  const res = await crane.api("/api/v1/runs", { method: "POST", json: body });
  if (res.status !== 201) throw new Error(`POST /runs answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Run;
}

export async function getRun(crane: LocalCrane, id: string): Promise<Run> {
  const res = await crane.api(`/api/v1/runs/${id}`);
  if (res.status !== 200) throw new Error(`GET /runs/${id} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Run;
}

/** Polls `fn` until it returns a value (not null), or fails after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | null>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== null) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
}

export const finished = (run: Run) => ["completed", "failed", "cancelled"].includes(run.status);

export { LocalCrane };
