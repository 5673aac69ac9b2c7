import type { Approval, Run } from "../../src/client";
import { asApprovals, asPage, asRun, asSignalAnswer } from "../answers";
import { type CommandSpec, type Context, integer, jsonArg, str } from "../args";
import { compact, printable, table, when } from "../format";
import { paintStatus } from "./runs";

function decided(ctx: Context, answer: Run, step: number, verb: string): number {
  const run = asRun(answer);
  if (ctx.json) {
    ctx.out.json(run);
    return 0;
  }
  const entry = run.execution_log.find((s) => s.step_number === step);
  ctx.out.line(
    `${verb} step ${step} of run ${printable(run.run_id)}; step ${paintStatus(ctx.out.colour, entry?.status ?? "?")}, run ${paintStatus(ctx.out.colour, run.status)}`,
  );
  return 0;
}

const approveCommand: CommandSpec = {
  name: "approve",
  args: "<run> <step>",
  summary: "Approve a step that waits for approval",
  positionals: { min: 2, max: 2 },
  options: {
    comment: { type: "string", value: "<text>", help: "a comment, kept in the step's output" },
    data: { type: "string", value: "<json>", help: "data for the steps after it" },
  },
  async action(ctx, [runId, stepText], values) {
    const step = integer(stepText, "<step>", approveCommand);
    const body: { comment?: string; data?: unknown } = {};
    if (str(values.comment) !== undefined) body.comment = str(values.comment);
    if (str(values.data) !== undefined) body.data = jsonArg(str(values.data) as string, "--data", approveCommand);
    return decided(ctx, await ctx.client.approve(runId as string, step, body), step, "approved");
  },
};

const rejectCommand: CommandSpec = {
  name: "reject",
  args: "<run> <step>",
  summary: "Reject a step that waits for approval (the step fails)",
  positionals: { min: 2, max: 2 },
  options: { reason: { type: "string", value: "<text>", help: "why; the step's error says it" } },
  async action(ctx, [runId, stepText], values) {
    const step = integer(stepText, "<step>", rejectCommand);
    const reason = str(values.reason);
    const run = await ctx.client.reject(runId as string, step, reason === undefined ? {} : { reason });
    return decided(ctx, run, step, "rejected");
  },
};

const signalCommand: CommandSpec = {
  name: "signal",
  args: "<run> <name>",
  summary: "Send a named signal to a run (a step waiting for it goes on)",
  positionals: { min: 2, max: 2 },
  options: {
    data: { type: "string", value: "<json>", help: "the signal's data" },
    "idempotency-key": { type: "string", value: "<key>", help: "a replay with the same key gives the same answer" },
  },
  async action(ctx, [runId, name], values) {
    const data = str(values.data);
    const answer = asSignalAnswer(
      await ctx.client.signal(
        runId as string,
        name as string,
        data === undefined ? {} : { data: jsonArg(data, "--data", signalCommand) },
        { idempotencyKey: str(values["idempotency-key"]) },
      ),
    );
    const said = printable(answer.name);
    if (ctx.json) ctx.out.json(answer);
    else if (answer.delivered_to !== null) ctx.out.line(`signal '${said}' delivered to step ${answer.delivered_to}`);
    else ctx.out.line(`signal '${said}' kept for run ${printable(answer.run_id)} until its step waits for it`);
    return 0;
  },
};

const approvalsCommand: CommandSpec = {
  name: "approvals",
  args: "",
  summary: "Steps waiting for approval now, oldest first",
  positionals: { min: 0, max: 0 },
  options: {},
  async action(ctx) {
    // Page by page here rather than through the client's iterator, so that each page's shape is checked.
    const items: Approval[] = [];
    let cursor: string | undefined;
    do {
      const page = asPage(await ctx.client.approvals({ cursor }), asApprovals);
      items.push(...page.items);
      cursor = typeof page.next === "string" ? page.next : undefined;
    } while (cursor !== undefined);
    if (ctx.json) {
      ctx.out.json(items);
      return 0;
    }
    if (items.length === 0) {
      ctx.out.line(ctx.out.colour.dim("nothing waits for approval"));
      return 0;
    }
    const rows = items.map((a) => [
      printable(a.run_id),
      String(a.step_number),
      when(a.since),
      when(a.timeout_at),
      compact(a.message, 60),
    ]);
    for (const line of table(["RUN", "STEP", "SINCE (UTC)", "TIMES OUT", "MESSAGE"], rows)) ctx.out.line(line);
    return 0;
  },
};

export const waitingCommands = [approveCommand, rejectCommand, signalCommand, approvalsCommand];
