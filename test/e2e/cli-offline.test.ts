// The `crane` command without a Crane: its pure pieces in-process, and the built command against
// a fake server that answers what a real one never would (text full of terminal escapes, JSON of
// another shape), or against nothing at all (usage errors, files, stdin, closed pipes, old Node).
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CommandSpec } from "../../cli/args";
import { buildRunBody, parseOptionPairs } from "../../cli/commands/runs";
import { compact, pretty, printable } from "../../cli/format";
import { Output } from "../../cli/output";
import { describeProblem } from "../../cli/problem";
import { CraneError } from "../../src/client";
import { CLI, type Command, type Result, spawnCli, userEnv } from "./cli-harness";

const ESC = "\u001b";
const BEL = "\u0007";
const CSI = "\u009b"; // the 8-bit CSI: as good as ESC [ to many terminals
/** Text that would clear the screen, retitle the window, ring the bell and move the cursor. */
const HOSTILE = `${ESC}[2J${ESC}]0;pwned${BEL}${CSI}6n\rover`;
/** Any control character a terminal acts on (newline and tab excepted). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

const command = { name: "run" } as CommandSpec;

/** What the fake server answers: a status and a JSON body, by `METHOD path`. Requests are kept. */
type Route = { status?: number; body: unknown; type?: string };
let routes: Record<string, Route> = {};
const requests: { method: string; path: string; body: unknown }[] = [];
let server: http.Server;
let url = "";

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let text = "";
    req.on("data", (d) => {
      text += String(d);
    });
    req.on("end", () => {
      const path = (req.url ?? "").split("?")[0] ?? "";
      requests.push({ method: req.method ?? "", path, body: text ? JSON.parse(text) : undefined });
      const route = routes[`${req.method} ${path}`] ?? {
        status: 404,
        body: { type: "about:blank", title: "Not Found", status: 404, detail: `no route ${path}` },
      };
      const status = route.status ?? 200;
      res.writeHead(status, { "Content-Type": route.type ?? "application/json" });
      res.end(JSON.stringify(route.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
});

const crane = (args: string[], opts: { stdin?: string } = {}): Promise<Result> => {
  const child = spawnCli(args, userEnv({ CRANE_URL: url }), { stdin: opts.stdin === undefined ? "ignore" : "pipe" });
  if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
  return child.result;
};

/** A Run as the API shapes it, with `patch` over it. */
const aRun = (patch: Record<string, unknown> = {}) => ({
  run_id: "r-1",
  prompt: "p",
  status: "running",
  plan: null,
  options: {},
  created_at: "2026-12-01T10:00:00.000Z",
  updated_at: "2026-12-01T10:00:00.000Z",
  completed_at: null,
  execution_log: [],
  waiting_for: [],
  result: null,
  error: null,
  rerun_of: null,
  compensation: null,
  ...patch,
});

/** Resolves with the command's result, or fails the test if it has not ended within `ms`. */
async function ended(cmd: Command, ms: number): Promise<Result> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cmd.kill("SIGKILL");
      reject(new Error(`still running after ${ms} ms:\n${cmd.output()}\n${cmd.errors()}`));
    }, ms);
  });
  try {
    return await Promise.race([cmd.result, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe("text from the server is shown, never obeyed by the terminal", () => {
  it("printable escapes C0 and C1 controls, DEL and CR, and keeps newline and tab", () => {
    expect(printable(`a${ESC}[31mb${CSI}c${BEL}d\u007fe\rf\ng\th`)).toBe(
      "a\\u001b[31mb\\u009bc\\u0007d\\u007fe\\u000df\ng\th",
    );
    expect(printable("plain – ünïcode ✓ 🚀")).toBe("plain – ünïcode ✓ 🚀");
    expect(pretty(`x${ESC}`)).toBe("x\\u001b");
    // JSON already escapes C0; the C1 CSI and DEL it leaves alone are escaped too.
    expect(pretty({ a: `${CSI}\u007f` })).toBe('{\n  "a": "\\u009b\\u007f"\n}');
    expect(compact(`one${ESC}[2J\ntwo`)).toBe("one\\u001b[2J two");
    // Bidi overrides and isolates reorder what a terminal shows ("Trojan Source"); separators break lines.
    expect(printable("ok\u202eexe.txt\u2066x\u2069\u2028")).toBe("ok\\u202eexe.txt\\u2066x\\u2069\\u2028");
  });

  it("compact cuts on code points, never between the halves of a surrogate pair", () => {
    const rockets = "🚀".repeat(10);
    const cut = compact(rockets, 5);
    expect(cut).toBe(`${"🚀".repeat(4)}…`);
    expect(cut.isWellFormed()).toBe(true);
    expect(compact(`${"a".repeat(59)}🚀🚀`, 60)).toBe(`${"a".repeat(59)}…`);
    expect(compact("🚀🚀🚀", 3)).toBe("🚀🚀🚀");
  });

  it("show, runs, events and a refused request print the server's text escaped; --json keeps it exact", async () => {
    const run = aRun({
      run_id: "r-1",
      prompt: `deploy ${HOSTILE}`,
      status: "failed",
      error: `Rejected: ${HOSTILE}`,
      plan: { planner: `rules${ESC}[5m`, steps: [] },
      execution_log: [
        {
          step_number: 1,
          tool_name: `approval${ESC}[8m`,
          tool_input: {},
          status: "failed",
          success: false,
          output: null,
          error: `Rejected: ${HOSTILE}`,
          attempts: 1,
          duration_ms: 5,
          waiting: null,
        },
      ],
      waiting_for: [{ step_number: 2, kind: "signal", name: `go${BEL}`, callback_url: `http://x/${CSI}` }],
    });
    routes = {
      "GET /api/v1/runs/r-1": { body: run },
      "GET /api/v1/runs": {
        body: [{ run_id: "r-1", status: "failed", prompt: run.prompt, step_count: 1, duration_ms: 5 }],
      },
      "GET /api/v1/runs/r-1/events": {
        body: [{ seq: 1, type: `run.created${ESC}[1A`, at: "2026-12-01T10:00:00.000Z", data: { why: HOSTILE } }],
      },
      "GET /api/v1/runs/r-2": {
        status: 404,
        body: { type: "about:blank", title: `Not Found${ESC}[2J`, status: 404, detail: `Run '${HOSTILE}' not found` },
      },
    };
    for (const args of [["show", "r-1"], ["runs"], ["events", "r-1"], ["show", "r-2"]]) {
      const { stdout, stderr } = await crane(args);
      expect({ args, raw: RAW_CONTROL.test(stdout + stderr) }).toEqual({ args, raw: false });
    }
    const shown = await crane(["show", "r-1"]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("prompt   deploy \\u001b[2J\\u001b]0;pwned\\u0007\\u009b6n\\u000dover");
    expect(shown.stdout).toContain("error: Rejected: \\u001b[2J");
    expect(shown.stdout).toContain("crane signal r-1 go\\u0007 --data");
    const refused = await crane(["show", "r-2"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^crane: 404 Not Found\\u001b\[2J: Run '\\u001b\[2J/);
    // Machine output is the server's JSON, byte for byte in meaning.
    const json = await crane(["show", "r-1", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual(run);
  });
});

describe("an answer of another shape than the API's", () => {
  it("is one clear line and exit 1, not a stack trace", async () => {
    const cases: [string[], string, Route][] = [
      [["runs"], "GET /api/v1/runs", { body: { items: "nope" } }],
      [["runs", "--all"], "GET /api/v1/runs", { body: { next: null } }],
      [["show", "r-1"], "GET /api/v1/runs/r-1", { body: { ok: true } }],
      [["show", "r-1"], "GET /api/v1/runs/r-1", { body: aRun({ execution_log: { 1: "x" } }) }],
      [["events", "r-1"], "GET /api/v1/runs/r-1/events", { body: { events: [] } }],
      [["tools"], "GET /api/v1/tools", { body: [{ name: "calculator" }] }],
      [["approvals"], "GET /api/v1/approvals", { body: null }],
      [["health"], "GET /api/v1/health", { body: "fine" }],
    ];
    for (const [args, route, answer] of cases) {
      routes = { [route]: answer };
      const { code, stdout, stderr } = await crane(args);
      expect({ args, code, stdout }).toEqual({ args, code: 1, stdout: "" });
      expect(stderr).toMatch(/^crane: unexpected answer from server: expected .+\n$/);
    }
  });

  it("a problem whose errors repeat its detail prints each once", () => {
    const problem = (detail: string, errors: { path: string; message: string }[]) =>
      describeProblem(
        new CraneError({ type: "about:blank", title: "Unprocessable Content", status: 422, detail, errors }),
      );
    // The message starts with its path (so the detail names it alone), or the detail words it otherwise.
    expect(
      problem("Invalid request body: options.bogus: unknown option", [
        { path: "options.bogus", message: "options.bogus: unknown option" },
      ]),
    ).toBe("422 Unprocessable Content: Invalid request body: options.bogus: unknown option");
    expect(problem("Invalid signal name: must match [a-z_]+", [{ path: "name", message: "must match [a-z_]+" }])).toBe(
      "422 Unprocessable Content: Invalid signal name: must match [a-z_]+",
    );
    // A later error with the first one's message is a problem of its own.
    expect(
      problem("Invalid plan: plan.steps.0.tool_name: Required (and 1 more problem)", [
        { path: "plan.steps.0.tool_name", message: "Required" },
        { path: "plan.steps.1.tool_name", message: "Required" },
      ]),
    ).toBe(
      "422 Unprocessable Content: Invalid plan: plan.steps.0.tool_name: Required (and 1 more problem)\n  plan.steps.1.tool_name: Required",
    );
  });
});

describe("usage errors (exit 2) before anything is sent", () => {
  it("an empty run id, name or key id", async () => {
    requests.length = 0;
    for (const args of [
      ["show", ""],
      ["watch", " "],
      ["approve", "", "1"],
      ["signal", "r-1", ""],
      ["keys", "revoke", ""],
    ]) {
      const { code, stderr } = await crane(args);
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(stderr).toMatch(/^crane: <\w+> must not be empty\n/);
    }
    expect(requests).toEqual([]);
  });

  it("a --url that is not an http(s) URL with a host, or no --url value at all", async () => {
    for (const [args, message] of [
      [["tools", "--url", "http://local host"], "--url must be an http:// or https:// URL with a host"],
      [["tools", "--url", "ftp://example.com"], "--url must be an http:// or https:// URL with a host"],
      [["tools", "--url"], "--url needs a value: --url <url>"],
      [["--url"], "--url needs a value: --url <url>"],
      [
        ["tools", "--url", "--json"],
        "--url needs a value: --url <url> (a value that starts with '-' is written --url=<value>)",
      ],
    ] as const) {
      const { code, stderr } = await crane([...args]);
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(stderr.split("\n")[0]).toContain(`crane: ${message}`);
      expect(stderr).not.toMatch(/TypeError|\n {4}at /);
    }
    const fromEnv = await spawnCli(["tools"], userEnv({ CRANE_URL: "http://local host" })).result;
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toMatch(/^crane: CRANE_URL must be an http:\/\/ or https:\/\/ URL/);
  });

  it("an argument that starts with '-' is refused with the whole hint: where to put '--'", async () => {
    const { code, stderr } = await crane(["run", "calculate", "-1+2", "--detach"]);
    expect(code).toBe(2);
    expect(stderr.split("\n")[0]).toBe(
      "crane: '-1+2' is not an option; an argument that starts with '-' goes after '--': crane run calculate --detach -- -1+2",
    );
    // …and the line it suggests works.
    routes = { "POST /api/v1/runs": { status: 201, body: aRun() } };
    expect((await crane(["run", "calculate", "--detach", "--", "-1+2"])).code).toBe(0);
    expect(requests.at(-1)?.body).toMatchObject({ prompt: "calculate -1+2" });
  });

  it("--option keys that would reach a prototype are refused; nothing is polluted", async () => {
    for (const pair of ["__proto__.x=1", "constructor.prototype.x=1", "a.__proto__=1", "retry..x=1"]) {
      expect(() => parseOptionPairs([pair], command)).toThrow(/--option/);
      const { code, stderr } = await crane(["run", "p", "--option", pair]);
      expect({ pair, code }).toEqual({ pair, code: 2 });
      expect(stderr).toMatch(/^crane: --option '/);
    }
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(
      parseOptionPairs(["retry.base_delay_ms=100", "retry.max_attempts=2", "on_failure=continue"], command),
    ).toEqual({ retry: { base_delay_ms: 100, max_attempts: 2 }, on_failure: "continue" });
  });
});

describe("run --plan: a plan or a whole request body, from a file or stdin", () => {
  it("buildRunBody takes a plan, or a body with or without a plan, and refuses anything else", () => {
    const values = { plan: "f.json" };
    expect(buildRunBody(["go"], values, command, { plan: null })).toEqual({ prompt: "go", plan: null });
    expect(buildRunBody([], values, command, { prompt: "calculate 1+2", options: { max_parallel: 2 } })).toEqual({
      prompt: "calculate 1+2",
      options: { max_parallel: 2 },
    });
    expect(buildRunBody([], values, command, { steps: [] })).toEqual({
      prompt: "plan from f.json",
      plan: { steps: [] },
    });
    // --option amends the file's options key by key: a nested key keeps its siblings.
    const file = { prompt: "p", options: { max_parallel: 2, retry: { max_attempts: 3, base_delay_ms: 50 } } };
    expect(
      buildRunBody([], { ...values, option: ["retry.base_delay_ms=100", "on_failure=continue"] }, command, file),
    ).toEqual({
      prompt: "p",
      options: { max_parallel: 2, retry: { max_attempts: 3, base_delay_ms: 100 }, on_failure: "continue" },
    });
    expect(file.options.retry.base_delay_ms).toBe(50); // the file's own object is not changed
    for (const file of [{ plan: null }, {}, [], null, 7, { plan: 5 }, { prompt: "x", options: [1] }]) {
      expect(() => buildRunBody([], values, command, file)).toThrow(/f\.json/);
    }
  });

  it('"plan": null without a prompt is a usage error, not a stack trace; a body without plan is sent as given', async () => {
    const dir = await import("node:fs/promises").then((fs) => fs.mkdtemp("/tmp/crane-plan-"));
    const write = async (name: string, text: string) => {
      await import("node:fs/promises").then((fs) => fs.writeFile(`${dir}/${name}`, text));
      return `${dir}/${name}`;
    };
    const nullPlan = await crane(["run", "--plan", await write("null.json", '{"plan": null}')]);
    expect(nullPlan.code).toBe(2);
    expect(nullPlan.stderr).toMatch(/^crane: \S+null\.json has no plan and no prompt/);
    expect(nullPlan.stderr).not.toContain("TypeError");
    for (const [name, text, message] of [
      ["list.json", "[1, 2]", "is neither a plan"],
      ["broken.json", "{not json", "is not valid JSON"],
      ["plan5.json", '{"plan": 5}', '"plan" must be a plan'],
    ]) {
      const { code, stderr } = await crane(["run", "--plan", await write(name as string, text as string)]);
      expect({ name, code }).toEqual({ name, code: 2 });
      expect(stderr.split("\n")[0]).toContain(message);
    }
    expect((await crane(["run", "--plan", `${dir}/missing.json`])).stderr).toMatch(
      /^crane: cannot read \S+missing\.json/,
    );

    routes = { "POST /api/v1/runs": { status: 201, body: aRun() } };
    const body = await write(
      "body.json",
      '{"prompt": "calculate 1+2", "planner": "rules", "options": {"max_parallel": 2}}',
    );
    const sent = await crane(["run", "--detach", "--plan", body, "--option", "on_failure=continue"]);
    expect(sent.code).toBe(0);
    expect(requests.at(-1)?.body).toEqual({
      prompt: "calculate 1+2",
      planner: "rules",
      options: { max_parallel: 2, on_failure: "continue" },
    });
    const withPrompt = await crane([
      "run",
      "--detach",
      "--plan",
      await write("n.json", '{"plan": null}'),
      "sleep 1 ms",
    ]);
    expect(withPrompt.code).toBe(0);
    expect(requests.at(-1)?.body).toEqual({ prompt: "sleep 1 ms", plan: null });
  });

  it("- reads stdin, and its errors name stdin", async () => {
    routes = { "POST /api/v1/runs": { status: 201, body: aRun() } };
    const plan = { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 1 } }] };
    const sent = await crane(["run", "--detach", "--plan", "-"], { stdin: JSON.stringify(plan) });
    expect(sent.code).toBe(0);
    expect(requests.at(-1)?.body).toEqual({ prompt: "plan from stdin", plan });
    const broken = await crane(["run", "--plan", "-"], { stdin: "{not json" });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/^crane: stdin is not valid JSON: /);
  });

  it("Ctrl-C while it waits for stdin on a terminal ends it (exit 130)", async () => {
    // `script` gives the command a terminal; Ctrl-C typed into it is a SIGINT from the line discipline.
    const child = spawn("script", ["-qec", `${process.execPath} ${CLI} run --plan -`, "/dev/null"], {
      env: userEnv({ CRANE_URL: url }),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => {
      output += String(d);
    });
    const cmd = Object.assign(child, {
      result: new Promise<Result>((resolve) =>
        child.on("close", (code) => resolve({ code, stdout: output, stderr: "" })),
      ),
      output: () => output,
      errors: () => "",
    });
    const deadline = Date.now() + 20_000;
    while (!output.includes("reading the plan from stdin") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(output).toContain("reading the plan from stdin");
    child.stdin.write("\u0003");
    // A synchronous read of fd 0 never let the SIGINT handler run: the command hung until stdin ended.
    const { code } = await ended(cmd, 10_000);
    expect(code).toBe(130);
  });
});

describe("a reader that goes away (EPIPE)", () => {
  it("a listing whose output is not read any more ends quietly with its own status", async () => {
    routes = { "GET /api/v1/runs": { body: [{ run_id: "r-1", status: "completed", prompt: "p", step_count: 1 }] } };
    const child = spawnCli(["runs"], userEnv({ CRANE_URL: url }));
    child.stdout?.destroy(); // `| head -0`: nobody reads
    const { code, stderr } = await ended(child, 20_000);
    expect(code).toBe(0);
    expect(stderr).toBe("");
  });
});

describe("the terminal", () => {
  it("a terminal that reports 0 columns is of unknown width: the status line gets 79, not 20", () => {
    const chunks: string[] = [];
    const stream = {
      isTTY: true,
      columns: 0,
      write(chunk: string) {
        chunks.push(chunk);
        return true;
      },
    };
    const out = new Output(stream as never, stream as never, { NO_COLOR: "1" });
    out.status("x".repeat(200));
    expect(chunks.join("")).toBe(`${"x".repeat(78)}…`);
  });

  // The machine running the tests may have an older Node besides the one running them.
  const oldNode = ["/usr/bin/node", "/usr/local/bin/node"].find(
    (n) =>
      existsSync(n) && Number(/^v(\d+)/.exec(execFileSync(n, ["--version"], { encoding: "utf8" }))?.[1] ?? 99) < 22,
  );
  it.skipIf(oldNode === undefined)("under Node < 22 it says which Node it needs, and nothing else", () => {
    const child = spawn(oldNode as string, [CLI, "runs"], { env: userEnv({ CRANE_URL: url }) });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    return new Promise<void>((resolve, reject) => {
      child.on("close", (code) => {
        try {
          expect(code).toBe(1);
          expect(stderr).toMatch(/^crane: needs Node\.js 22 or newer \(this is v\d+\.\d+\.\d+\)\n$/);
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    });
  });
});
