// The `crane` command as a user types it, against a real `wrangler dev`: the built
// dist/cli/crane.js in a child process, its output and its exit status. (v1.1 commands: cli-v11.test.ts.)
import { spawn } from "node:child_process";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { Output } from "../../cli/output";
import type { Run, RunEvent, RunSummary, ToolDescriptor } from "../../src/client";
import { poll } from "../helpers/poll";
import { CLI, cliSuite, lines, type Result } from "./cli-harness";

const { crane, env, start, run: crane$, planFile } = cliSuite("cli");

const ESC = "\u001b";

/**
 * A TCP relay to Crane that never passes the server's end of a connection on to the client:
 * a WebSocket through it never sees its close. Whoever waits for `close` waits forever.
 */
async function holdOpenRelay(): Promise<{ url: string; stop(): void }> {
  const target = new URL(crane.url);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => s.destroy());
    }
    client.pipe(upstream);
    upstream.pipe(client, { end: false });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe("crane run", () => {
  it("a completed run: one line per step change, the result, exit 0", async () => {
    const { code, stdout, stderr } = await crane$(["run", "calculate (41*7)+13"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const out = lines(stdout);
    expect(out[0]).toMatch(/^run [0-9a-f-]{36}$/);
    expect(out.slice(1)).toEqual([
      "planned by rules: 1 step",
      "step 1 calculator  running",
      expect.stringMatching(/^step 1 calculator {2}succeeded in \d+ ms {2}→ 300$/),
      expect.stringMatching(/^completed in \d+ ms$/),
      "result: 300",
    ]);
    // Piped: plain lines, no colour, no cursor movement.
    expect(stdout).not.toContain(ESC);
  });

  it("a failed run: the failing step, the error, exit 1", async () => {
    const { code, stdout } = await crane$(["run", "calculate 2 + 2 then divide it by 0"]);
    expect(code).toBe(1);
    const out = lines(stdout);
    expect(out).toContainEqual(
      expect.stringMatching(/^step 2 calculator {2}failed in \d+ ms after 1 attempt: Division by zero$/),
    );
    expect(out.at(-2)).toMatch(/^failed after \d+ ms$/);
    expect(out.at(-1)).toBe("error: Step 2 (calculator) failed: Division by zero");
  });

  it("a multi-step run shows each step as it goes and exits as soon as the run ends, even if its socket never closes", async () => {
    const relay = await holdOpenRelay();
    try {
      const plan = planFile("fan-in.json", {
        steps: [
          { step_number: 1, tool_name: "sleep", tool_input: { ms: 300 } },
          { step_number: 2, tool_name: "sleep", tool_input: { ms: 150 } },
          {
            step_number: 3,
            tool_name: "calculator",
            tool_input: { expression: "{{steps.1.output.slept_ms}} + {{steps.2.output.slept_ms}}" },
          },
        ],
      });
      const { code, stdout } = await crane$(["run", "--plan", plan, "two sleeps and a sum"], { CRANE_URL: relay.url });
      expect(code).toBe(0);
      const out = lines(stdout);
      expect(out[1]).toBe("plan given: 3 steps");
      const at = (pattern: RegExp) => out.findIndex((l) => pattern.test(l));
      for (const step of [1, 2, 3]) {
        expect(at(new RegExp(`^step ${step} \\S+ +running$`))).toBeGreaterThan(0);
        expect(at(new RegExp(`^step ${step} \\S+ +succeeded in \\d+ ms`))).toBeGreaterThan(
          at(new RegExp(`^step ${step} \\S+ +running$`)),
        );
      }
      // The join starts only after both sleeps succeeded.
      expect(at(/^step 3 calculator +running$/)).toBeGreaterThan(at(/^step 1 sleep +succeeded/));
      expect(at(/^step 3 calculator +running$/)).toBeGreaterThan(at(/^step 2 sleep +succeeded/));
      expect(out.at(-2)).toMatch(/^completed in \d/);
      expect(out.at(-1)).toBe("result: 450");
    } finally {
      relay.stop();
    }
  });

  it("--json prints only the final Run; --option reaches the run", async () => {
    const plan = planFile("parallel.json", {
      steps: [
        { step_number: 1, tool_name: "sleep", tool_input: { ms: 50 } },
        { step_number: 2, tool_name: "sleep", tool_input: { ms: 50 } },
      ],
    });
    const { code, stdout } = await crane$(["run", "--json", "--plan", plan, "--option", "max_parallel=1"]);
    expect(code).toBe(0);
    const run = JSON.parse(stdout) as Run;
    expect(run).toMatchObject({ status: "completed", result: { slept_ms: 50 }, prompt: "plan from parallel.json" });
    const events = JSON.parse((await crane$(["events", run.run_id, "--json"])).stdout) as RunEvent[];
    expect(events[0]).toMatchObject({ type: "run.created", data: { options: { max_parallel: 1 } } });
  });

  it("--detach answers the run id at once; watch follows it to the end; cancel ends it with exit 1 for its watcher", async () => {
    const plan = planFile("slow.json", { steps: [{ step_number: 1, tool_name: "sleep", tool_input: { ms: 1500 } }] });
    const detached = await crane$(["run", "--detach", "--plan", plan]);
    expect(detached.code).toBe(0);
    // The id alone on stdout (for `crane watch $(crane run … --detach)`); where it stands on stderr.
    expect(detached.stdout).toMatch(/^\S+\n$/);
    const id = detached.stdout.trim();
    expect(detached.stderr).toBe(`run ${id} running\n`);
    const watcher = start(["watch", id]);
    const cancel = await crane$(["cancel", id]);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toBe(`run ${id} cancelled: Cancelled by request\n`);
    const watched = await watcher.result;
    expect(watched.code).toBe(1);
    expect(lines(watched.stdout).at(-2)).toMatch(/^cancelled after /);
    expect(lines(watched.stdout).at(-1)).toBe("error: Cancelled by request");
    const again = await crane$(["cancel", id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 Conflict: Run '.*' already finished with status cancelled/);
  });
});

describe("reading", () => {
  it("runs, show, events and tools, as tables and as --json", async () => {
    const tag = `cli-${crypto.randomUUID().slice(0, 8)}`;
    const { stdout } = await crane$([
      "run",
      "--json",
      "--plan",
      planFile("tagged.json", {
        final_goal: `tagged ${tag}`,
        steps: [{ step_number: 1, tool_name: "calculator", tool_input: { expression: "6*7" } }],
      }),
    ]);
    const run = JSON.parse(stdout) as Run;
    expect(run.prompt).toBe(`tagged ${tag}`);

    // The list may trail a finished run by a moment (API.md: within 1 s).
    const listed = await poll("the run in `crane runs`", async () => {
      const r = await crane$(["runs", "--q", tag]);
      return r.stdout.includes(run.run_id) ? r : null;
    });
    expect(listed.code).toBe(0);
    const [header, row] = lines(listed.stdout);
    expect(header).toMatch(/^RUN +STATUS +STEPS +DURATION +CREATED \(UTC\) +PROMPT$/);
    expect(row).toMatch(new RegExp(`^${run.run_id} +completed +1 +\\d+ ms +\\S+ \\S+ +tagged ${tag}$`));
    const listedJson = JSON.parse((await crane$(["runs", "--q", tag, "--json"])).stdout) as RunSummary[];
    expect(listedJson.map((r) => r.run_id)).toEqual([run.run_id]);
    // JSON lists page too: stdout stays the array, the next page's cursor goes to stderr.
    const paged = await crane$(["runs", "--limit", "1", "--json"]);
    expect(JSON.parse(paged.stdout)).toHaveLength(1);
    expect(paged.stderr).toMatch(/^more: crane runs --cursor \S+ {2}\(or --all\)\n$/);

    const shown = await crane$(["show", run.run_id]);
    expect(shown.code).toBe(0);
    expect(lines(shown.stdout)).toEqual(
      expect.arrayContaining([
        `run      ${run.run_id}`,
        "status   completed",
        expect.stringMatching(/^1 +calculator +succeeded +1 +\d+ ms +42$/),
        "result: 42",
      ]),
    );
    expect(JSON.parse((await crane$(["show", run.run_id, "--json"])).stdout)).toEqual(run);

    const events = await crane$(["events", run.run_id]);
    expect(lines(events.stdout)[1]).toMatch(/^1 +\S+ \S+ +run\.created/);
    expect(lines(events.stdout).at(-1)).toMatch(/ run\.completed /);

    const tools = await crane$(["tools"]);
    expect(tools.code).toBe(0);
    expect(lines(tools.stdout).some((l) => /^calculator +none +3 +closed +expression /.test(l))).toBe(true);
    const toolsJson = JSON.parse((await crane$(["tools", "--json"])).stdout) as ToolDescriptor[];
    expect(toolsJson.map((t) => t.name)).toEqual(expect.arrayContaining(["calculator", "todo_store", "sleep"]));
  });

  it("show of an unknown run says so and exits 1", async () => {
    const { code, stderr } = await crane$(["show", "no-such-run"]);
    expect(code).toBe(1);
    expect(stderr).toBe("crane: 404 Not Found: Run 'no-such-run' not found\n");
  });
});

describe("exit status 3 and 2", () => {
  it("a wrong key is refused: exit 3, from the flag or from CRANE_API_KEY", async () => {
    const flag = await crane$(["runs", "--api-key", "wrong-key"]);
    expect(flag.code).toBe(3);
    expect(flag.stderr).toMatch(/^crane: the server refused the API key: 401 Unauthorized/);
    const fromEnv = await crane$(["run", "calculate 1+1"], { CRANE_API_KEY: "wrong-key" });
    expect(fromEnv.code).toBe(3);
    expect(fromEnv.stdout).toBe("");
    // An empty variable is an unset one: the default key (and URL) apply.
    expect((await crane$(["runs", "--limit", "1"], { CRANE_API_KEY: "" })).code).toBe(0);
  });

  it("a server that cannot be reached: exit 3", async () => {
    const { code, stderr } = await crane$(["tools"], { CRANE_URL: "http://127.0.0.1:9" });
    expect(code).toBe(3);
    expect(stderr).toMatch(/^crane: Cannot reach http:\/\/127\.0\.0\.1:9: /);
  });

  it("usage errors: exit 2 with the command's usage", async () => {
    for (const args of [
      [],
      ["frob"],
      ["run"],
      ["show"],
      ["approve", "r", "two"],
      ["run", "--planner", "x", "p"],
      ["runs", "--bogus"],
      ["keys"],
      ["keys", "frob"],
      ["approve", "r"],
      ["runs", "--since", "yesterday"], // the server's 400: a bad filter is the caller's to fix
    ]) {
      const { code, stderr } = await crane$(args);
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(stderr).toMatch(/^crane: |^usage: /);
    }
    // Each names what is wrong, once.
    expect((await crane$(["keys", "frob"])).stderr).toMatch(/^crane: unknown subcommand 'keys frob' \(one of /);
    expect((await crane$(["approve", "r"])).stderr).toMatch(/^crane: missing argument: <step>\n/);
    const bad = await crane$(["run", "calculate 1+1", "--option", "bogus=1"]);
    expect(bad.code).toBe(1);
    expect(lines(bad.stderr)).toHaveLength(1);
    const help = await crane$(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: crane <command>/);
    const runHelp = await crane$(["run", "--help"]);
    expect(runHelp.stdout).toMatch(/^usage: crane run \[prompt…\]/);
  });
});

describe("keys (admin)", () => {
  it("keys create gives a key that works; keys list shows it without the secret; keys revoke ends it", async () => {
    const tenant = `cli-${crypto.randomUUID().slice(0, 8)}`;
    const created = await crane$(["keys", "create", "--tenant", tenant, "--name", "laptop", "--json"]);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as { key_id: string; api_key: string };
    expect((await crane$(["runs", "--api-key", key.api_key, "--json"])).stdout).toBe("[]\n");
    expect((await crane$(["keys", "list", "--tenant", `${tenant}-none`])).stdout).toBe(
      `no keys for tenant '${tenant}-none'\n`,
    );

    const listed = await crane$(["keys", "list", "--tenant", tenant]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${key.key_id} +laptop +\\S+ \\S+ +active +default +default$`, "m"));
    expect(listed.stdout).not.toContain(key.api_key);

    expect((await crane$(["keys", "revoke", key.key_id])).stdout).toBe(`revoked key ${key.key_id}\n`);
    expect((await crane$(["runs", "--api-key", key.api_key])).code).toBe(3);
    const wrongAdmin = await crane$(["keys", "list", "--tenant", tenant], { CRANE_ADMIN_TOKEN: "nope" });
    expect(wrongAdmin.code).toBe(3);
    expect(wrongAdmin.stderr).toMatch(/refused the admin token/);
  });
});

describe("terminal output", () => {
  it("on a terminal: colour and a status line; NO_COLOR keeps the colour off", async () => {
    // `script` gives the command a pseudo-terminal, as a user's shell would.
    const typed = (extra: string) =>
      new Promise<Result>((resolve) => {
        const child = spawn(
          "script",
          ["-qec", `${extra} ${process.execPath} ${CLI} run 'sleep 300 ms then calculate 1+1'`, "/dev/null"],
          {
            env: env(),
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
        let stdout = "";
        child.stdout.on("data", (d) => {
          stdout += String(d);
        });
        child.on("close", (code) => resolve({ code, stdout, stderr: "" }));
      });
    const coloured = await typed("");
    expect(coloured.code).toBe(0);
    expect(coloured.stdout).toContain(`${ESC}[32msucceeded${ESC}[39m`);
    expect(coloured.stdout).toContain("result:");
    // The status line is drawn while the run goes and erased (carriage return, clear line) before each line.
    expect(coloured.stdout).toContain("\r\u001b[2K");
    const plain = await typed("NO_COLOR=1");
    expect(plain.code).toBe(0);
    // No colour (SGR 31–36); the status line's redrawing may still move the cursor.
    for (const code of [31, 32, 33, 36]) expect(plain.stdout).not.toContain(`${ESC}[${code}m`);
    expect(plain.stdout).toMatch(/succeeded in/);
  });

  it("Output: colour only on a TTY without NO_COLOR; the status line only on a TTY", () => {
    const sink = (isTTY: boolean) => {
      const chunks: string[] = [];
      const stream = {
        isTTY,
        columns: 80,
        write(chunk: string, cb?: () => void) {
          chunks.push(chunk);
          cb?.();
          return true;
        },
      };
      return { stream, text: () => chunks.join("") };
    };
    const tty = sink(true);
    const out = new Output(tty.stream as never, sink(false).stream as never, {});
    out.status("working");
    out.line(out.colour.green("done"));
    expect(tty.text()).toBe("\x1b[2mworking\x1b[22m\r\x1b[2K\x1b[32mdone\x1b[39m\n\x1b[2mworking\x1b[22m");

    const noColour = sink(true);
    const quiet = new Output(noColour.stream as never, sink(false).stream as never, { NO_COLOR: "1" });
    quiet.line(quiet.colour.green("done"));
    expect(noColour.text()).toBe("done\n");

    const piped = sink(false);
    const plain = new Output(piped.stream as never, sink(false).stream as never, {});
    plain.status("working");
    plain.line(plain.colour.red("failed"));
    expect(piped.text()).toBe("failed\n");
  });
});
