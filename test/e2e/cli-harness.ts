// The `crane` command as a user types it: the built dist/cli/crane.js in a child process against
// this file's own `wrangler dev`, with its output and exit status. Shared by the CLI suites.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { LocalCrane } from "../../scripts/local-wrangler";

export const CLI = path.resolve(import.meta.dirname, "../../dist/cli/crane.js");

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export type Command = ChildProcess & { result: Promise<Result>; output(): string; errors(): string };

/**
 * Starts the built `crane` with exactly this environment. stdin is closed unless `stdin: "pipe"`
 * (then the test writes to it, or holds it open).
 */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv, opts: { stdin?: "pipe" | "ignore" } = {}): Command {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: [opts.stdin ?? "ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += String(d);
  });
  child.stderr?.on("data", (d) => {
    stderr += String(d);
  });
  const result = new Promise<Result>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return Object.assign(child, { result, output: () => stdout, errors: () => stderr });
}

/** The environment a user's shell would have, minus any CRANE_* of the machine running the tests. */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CRANE_")));
  return { ...base, ...extra };
}

export const lines = (text: string) => text.split("\n").filter((l) => l.length > 0);

/** Starts a local Crane for the file (and stops it, and any command left running, afterwards). */
export function cliSuite(label: string) {
  const crane = new LocalCrane();
  const dir = mkdtempSync(path.join(tmpdir(), `crane-${label}-`));
  const children = new Set<ChildProcess>();
  beforeAll(async () => {
    crane.migrate();
    await crane.start();
  });
  afterAll(() => {
    // A command left waiting by a failed test must not outlive the file.
    for (const child of children) if (child.exitCode === null) child.kill();
    crane.dispose();
  });

  /** A user's environment pointed at this file's Crane. */
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => userEnv({ CRANE_URL: crane.url, ...extra });

  const start = (args: string[], extra: Record<string, string> = {}): Command => {
    const child = spawnCli(args, env(extra));
    children.add(child);
    return child;
  };

  return {
    crane,
    env,
    start,
    /** Runs a command to its end. */
    run: (args: string[], extra: Record<string, string> = {}) => start(args, extra).result,
    /** Writes a plan (or a request body) to a file for `--plan`. */
    planFile(name: string, plan: unknown): string {
      const file = path.join(dir, name);
      writeFileSync(file, JSON.stringify(plan));
      return file;
    },
    /** Waits until a running command has printed a line matching `pattern`; answers that line. */
    async printed(cmd: Command, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const line = lines(cmd.output()).find((l) => pattern.test(l));
        if (line) return line;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no line matching ${pattern} in:\n${cmd.output()}\n${cmd.errors()}`);
    },
  };
}
