import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");
const WRANGLER = path.join(ROOT, "node_modules/.bin/wrangler");
/** Read when wrangler starts, so that a setting made after this module loaded (bench/tooling.ts) applies. */
const env = () => ({ ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" });

const randomPort = () => 18_000 + Math.floor(Math.random() * 2_000);
const claimed = new Set<number>();
/** Whether nothing listens on `port` of 127.0.0.1. */
export const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });

/** `kill -9` of a process group started with `detached: true`: no shutdown hooks, no flushing. */
export function killGroup(child: ChildProcess | null): void {
  if (!child?.pid) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/**
 * A `wrangler dev` on its own port and state directory, started as `npm run dev` starts Crane
 * (or, with `config`, another Worker such as a benchmark peer). Used by the e2e tests and the
 * benchmarks.
 */
export class LocalCrane {
  readonly persistTo = mkdtempSync(path.join(tmpdir(), "crane-local-"));
  /** Chosen at random, then moved off any port (or inspector port + 1) in use at the first start. */
  port = randomPort();
  private started = false;
  private child: ChildProcess | null = null;
  output = "";

  private readonly config: string;
  private readonly healthPath: string;

  // Plain fields, not parameter properties: the benchmark runs this file with Node's type stripping.
  constructor(config = "wrangler.toml", healthPath = "/api/v1/health") {
    this.config = config;
    this.healthPath = healthPath;
  }

  /** The wrangler process group (wrangler and its workerd), for memory sampling. */
  get pgid(): number | null {
    return this.child?.pid ?? null;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  migrate(): void {
    execFileSync(
      WRANGLER,
      ["d1", "migrations", "apply", "crane", "--local", "--persist-to", this.persistTo, "-c", this.config],
      {
        cwd: ROOT,
        env: env(),
        stdio: "pipe",
      },
    );
  }

  /** Starts wrangler dev and waits until the API answers. */
  async start(vars: Record<string, string> = {}): Promise<void> {
    // A restart keeps its port (clients hold the URL); the first start takes a free pair, since a
    // clash would let another instance answer this one's health check.
    if (!this.started) {
      while (
        claimed.has(this.port) ||
        claimed.has(this.port + 1) ||
        !(await portFree(this.port)) ||
        !(await portFree(this.port + 1))
      )
        this.port = randomPort();
      claimed.add(this.port);
      claimed.add(this.port + 1);
      this.started = true;
    }
    const args = [
      "dev",
      "-c",
      this.config,
      "--port",
      String(this.port),
      "--ip",
      "127.0.0.1",
      "--persist-to",
      this.persistTo,
    ];
    args.push("--inspector-port", String(this.port + 1));
    for (const [k, v] of Object.entries({ ENVIRONMENT: "development", ...vars })) args.push("--var", `${k}:${v}`);
    // Its own process group, so that kill() takes workerd down with wrangler, like a crash would.
    this.child = spawn(WRANGLER, args, { cwd: ROOT, env: env(), detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout?.on("data", (d) => {
      this.output += String(d);
    });
    this.child.stderr?.on("data", (d) => {
      this.output += String(d);
    });
    const deadline = Date.now() + 60_000;
    let last: unknown = null;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${this.url}${this.healthPath}`);
        if (res.status === 200) return;
        last = `health answered ${res.status}`;
      } catch (err) {
        last = err; // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`wrangler dev did not start (${String(last)}):\n${this.output.slice(-3000)}`);
  }

  /** `kill -9` of wrangler and workerd: no shutdown hooks, no flushing. The state stays for a restart. */
  kill(): void {
    killGroup(this.child);
    this.child = null;
  }

  /** Kills it and removes its state directory: the end of this instance. */
  dispose(): void {
    this.kill();
    rmSync(this.persistTo, { recursive: true, force: true });
  }

  async api(pathname: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("Authorization", "Bearer crane-dev-key");
    if (init.json !== undefined) headers.set("Content-Type", "application/json");
    return fetch(`${this.url}${pathname}`, {
      ...init,
      headers,
      body: init.json === undefined ? init.body : JSON.stringify(init.json),
    });
  }
}
