import { describe, expect, it } from "vitest";
import type { Approval, Run } from "../../src/client";
import { type Command, cliSuite, lines } from "./cli-harness";

const { start, run, planFile, printed } = cliSuite("cli-v11");
const crane$ = (...args: string[]) => run(args);

const approvalPlan = () =>
  planFile("approval.json", {
    final_goal: "deploy after approval",
    steps: [
      { step_number: 1, tool_name: "approval", tool_input: { message: "deploy to production?" } },
      { step_number: 2, tool_name: "calculator", tool_input: { expression: "20+22" }, depends_on: [1] },
    ],
  });

const runIdOf = (cmd: Command) => /^run (\S+)/.exec(cmd.output())?.[1] as string;

describe("a run that waits, and a second terminal that ends the wait", () => {
  it("approve: the waiting line names the commands and the callback URL; the run then completes (exit 0)", async () => {
    const running = start(["run", "--plan", approvalPlan()]);
    await printed(running, /^step 1 approval +waiting for approval: deploy to production\?/);
    // The block's lines can reach the pipe in more than one chunk: wait for its last.
    await printed(running, /^ {4}callback: /);
    const id = runIdOf(running);
    expect(lines(running.output())).toEqual(
      expect.arrayContaining([
        `    crane approve ${id} 1   |   crane reject ${id} 1`,
        expect.stringMatching(/^ {4}callback: http:\/\/\S+\/api\/v1\/callbacks\/\S+$/),
      ]),
    );

    const inbox = JSON.parse((await crane$("approvals", "--json")).stdout) as Approval[];
    expect(inbox).toContainEqual(expect.objectContaining({ run_id: id, step_number: 1 }));
    const table = await crane$("approvals");
    expect(table.stdout).toMatch(new RegExp(`^${id} +1 +.*deploy to production\\?$`, "m"));

    const approved = await crane$("approve", id, "1", "--comment", "go ahead");
    expect(approved.code).toBe(0);
    expect(approved.stdout).toMatch(new RegExp(`^approved step 1 of run ${id}; step succeeded, run \\w+\\n$`));

    const done = await running.result;
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^step 2 calculator {2}succeeded in \d+ ms {2}→ 42$/m);
    expect(lines(done.stdout).at(-1)).toBe("result: 42");
  });

  it("Ctrl-C stops following a waiting run (exit 130) and the run goes on", async () => {
    const running = start(["run", "--plan", approvalPlan()]);
    await printed(running, /waiting for approval/);
    const id = runIdOf(running);
    running.kill("SIGINT");
    const stopped = await running.result;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toContain(`stopped following run ${id}; it goes on (crane watch ${id})`);
    // The run still waits: approving it completes it.
    expect((await crane$("approve", id, "1")).code).toBe(0);
    expect((await crane$("watch", id)).code).toBe(0);
  });

  it("reject: the step fails with the reason and the run with it (exit 1)", async () => {
    const running = start(["run", "--plan", approvalPlan()]);
    await printed(running, /waiting for approval/);
    const id = runIdOf(running);
    const rejected = await crane$("reject", id, "1", "--reason", "not today");
    expect(rejected.code).toBe(0);
    expect(rejected.stdout).toMatch(/^rejected step 1 of run \S+; step failed, run \w+\n$/);
    const done = await running.result;
    expect(done.code).toBe(1);
    expect(done.stdout).toMatch(/^step 1 approval +failed .*Rejected: not today/m);
    expect(lines(done.stdout).at(-1)).toMatch(/^error: .*Rejected: not today/);
  });

  it("a reject reason full of terminal escapes is shown escaped (run, show); --json keeps it exact", async () => {
    const hostile = "\u001b[2J\u001b]0;pwned\u0007\u009b6n";
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
    const running = start(["run", "--plan", approvalPlan()]);
    await printed(running, /waiting for approval/);
    const id = runIdOf(running);
    expect((await crane$("reject", id, "1", "--reason", hostile)).code).toBe(0);
    const done = await running.result;
    expect(done.code).toBe(1);
    const escaped = "Rejected: \\u001b[2J\\u001b]0;pwned\\u0007\\u009b6n";
    expect(done.stdout).toMatch(new RegExp(`^step 1 approval +failed .*${escaped.replace(/[\\[\]]/g, "\\$&")}$`, "m"));
    expect(lines(done.stdout).at(-1)).toContain(escaped);
    expect(raw.test(done.stdout)).toBe(false);
    const shown = await crane$("show", id);
    expect(shown.stdout).toContain(escaped);
    expect(raw.test(shown.stdout)).toBe(false);
    const json = JSON.parse((await crane$("show", id, "--json")).stdout) as Run;
    expect(json.error).toContain(`Rejected: ${hostile}`);
  });

  it("a watcher whose reader went away stops following quietly with exit 141; the run goes on", async () => {
    const detached = await crane$("run", "--detach", "--plan", approvalPlan());
    const id = detached.stdout.trim();
    const watcher = start(["watch", id]);
    watcher.stdout?.destroy(); // `crane watch … | head -0`: the first line already has no reader
    const gone = await watcher.result;
    expect(gone.code).toBe(141);
    expect(gone.stderr).toBe("");
    expect((await crane$("approve", id, "1")).code).toBe(0);
    expect((await crane$("watch", id)).code).toBe(0);
  });

  it("signal: the waiting step gets the data and the run completes (exit 0); a late signal is a 409 (exit 1)", async () => {
    const plan = planFile("signal.json", {
      steps: [
        { step_number: 1, tool_name: "signal", tool_input: { name: "payment_received" } },
        { step_number: 2, tool_name: "calculator", tool_input: { expression: "{{steps.1.output.data.amount}} * 2" } },
      ],
    });
    const running = start(["run", "--plan", plan]);
    await printed(running, /^step 1 signal +waiting for signal 'payment_received'/);
    await printed(running, /^ {4}crane signal /);
    const id = runIdOf(running);
    expect(running.output()).toContain(`    crane signal ${id} payment_received --data '<json>'`);

    const sent = await crane$("signal", id, "payment_received", "--data", '{"amount": 21}');
    expect(sent.code).toBe(0);
    expect(sent.stdout).toBe("signal 'payment_received' delivered to step 1\n");
    const done = await running.result;
    expect(done.code).toBe(0);
    expect(done.stdout).toContain("signal 'payment_received' received by step 1");
    expect(lines(done.stdout).at(-1)).toBe("result: 42");

    const late = await crane$("signal", id, "payment_received");
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/^crane: 409 Conflict: /);
    const bad = await crane$("signal", id, "payment_received", "--data", "{not json");
    expect(bad.code).toBe(2);
  });
});

describe("recovery", () => {
  it("cancel --compensate undoes the todo the run added; watch shows the compensation (exit 1)", async () => {
    const plan = planFile("saga.json", {
      steps: [
        { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text: `saga ${crypto.randomUUID()}` } },
        { step_number: 2, tool_name: "wait", tool_input: { ms: 600_000 }, depends_on: [1] },
      ],
    });
    const running = start(["run", "--plan", plan]);
    await printed(running, /^step 2 wait +waiting for a timer \(until \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC\)/);
    const id = runIdOf(running);
    const cancelled = await crane$("cancel", id, "--compensate", "--reason", "changed my mind");
    expect(cancelled.code).toBe(0);
    const done = await running.result;
    expect(done.code).toBe(1);
    expect(done.stdout).toMatch(/^undo step 1 todo_store +succeeded$/m);
    expect(done.stdout).toContain("compensation completed");
    const shown = JSON.parse((await crane$("show", id, "--json")).stdout) as Run;
    expect(shown).toMatchObject({ status: "cancelled", compensation: { status: "completed" } });
    expect((await crane$("show", id)).stdout).toMatch(/^compensation completed$/m);
  });

  it("rerun with --input fixes the failed step and reuses the rest (exit 0); --from a missing step is refused", async () => {
    const plan = planFile("divide.json", {
      steps: [
        { step_number: 1, tool_name: "calculator", tool_input: { expression: "2*3" } },
        { step_number: 2, tool_name: "calculator", tool_input: { expression: "{{steps.1.output}} / 0" } },
      ],
    });
    const failed = await crane$("run", "--json", "--plan", plan);
    expect(failed.code).toBe(1);
    const original = JSON.parse(failed.stdout) as Run;

    const rerun = await crane$("rerun", original.run_id, "--input", '2={"expression": "{{steps.1.output}} / 2"}');
    expect(rerun.code).toBe(0);
    expect(rerun.stdout).toContain(`step 1 calculator  reused from run ${original.run_id}`);
    expect(lines(rerun.stdout).at(-1)).toBe("result: 3");

    const from = await crane$("rerun", original.run_id, "--from", "99");
    expect(from.code).toBe(1);
    expect(from.stderr).toMatch(/^crane: 422 /);
  });
});
