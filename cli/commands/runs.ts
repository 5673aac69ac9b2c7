import { readFileSync } from "node:fs";
import path from "node:path";
import type { CreateRunBody, ListRunsParams, Run, RunStatus, RunSummary } from "../../src/client";
import { type CommandSpec, integer, jsonArg, list, str, UsageError, type Values } from "../args";
import { compact, duration, pretty, table, when } from "../format";
import type { Palette } from "../output";
import { follow } from "./follow";

const STATUSES: RunStatus[] = ["pending", "running", "completed", "failed", "cancelled"];

export function paintStatus(c: Palette, status: string): string {
  if (status === "completed" || status === "succeeded") return c.green(status);
  if (status === "failed") return c.red(status);
  if (status === "cancelled" || status === "waiting") return c.yellow(status);
  if (status === "running") return c.cyan(status);
  return c.dim(status);
}

/** `--option max_parallel=4 --option retry.base_delay_ms=100`: values are JSON when they parse, else strings. */
export function parseOptionPairs(pairs: string[], command: CommandSpec): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--option takes key=value, not '${pair}'`, command);
    const keys = pair.slice(0, eq).split(".");
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err; // a bare word: the string itself
    }
    let target = options;
    for (const key of keys.slice(0, -1)) {
      const next = target[key];
      target[key] = typeof next === "object" && next !== null ? next : {};
      target = target[key] as Record<string, unknown>;
    }
    target[keys.at(-1) as string] = value;
  }
  return options;
}

function readJsonFile(file: string, command: CommandSpec): unknown {
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, command);
  }
  return jsonArg(text, file, command);
}

const runCommand: CommandSpec = {
  name: "run",
  args: "[prompt…]",
  summary: "Start a run and follow it step by step until it ends; prints the result",
  positionals: { min: 0, max: Number.POSITIVE_INFINITY },
  options: {
    plan: { type: "string", value: "<file.json>", help: 'an explicit plan {"steps": [...]} (or - for stdin)' },
    planner: { type: "string", value: "auto|rules|llm", help: "which planner turns the prompt into a plan" },
    option: {
      type: "string",
      multiple: true,
      value: "<k=v>",
      help: "run option, e.g. max_parallel=4, on_failure=continue",
    },
    "idempotency-key": { type: "string", value: "<key>", help: "the same key and body within 24 h give the same run" },
    detach: { type: "boolean", help: "print the run id and exit without following it" },
  },
  async action(ctx, positionals, values) {
    const body = buildRunBody(positionals, values, runCommand);
    const run = await ctx.client.createRun(body, { idempotencyKey: str(values["idempotency-key"]) });
    return started(ctx, run, values);
  },
};

function buildRunBody(positionals: string[], values: Values, command: CommandSpec): CreateRunBody {
  const planFile = str(values.plan);
  let prompt = positionals.join(" ").trim();
  const body: Record<string, unknown> = {};
  if (planFile !== undefined) {
    const value = readJsonFile(planFile, command) as Record<string, unknown> | null;
    if (value && Array.isArray(value.steps)) {
      body.plan = value;
    } else if (value && typeof value.plan === "object") {
      Object.assign(body, value); // a whole request body: prompt, plan, options
    } else {
      throw new UsageError(`${planFile} is neither a plan ({"steps": [...]}) nor a run body ({"plan": ...})`, command);
    }
    const goal = (body.plan as { final_goal?: unknown }).final_goal;
    prompt ||= typeof body.prompt === "string" ? body.prompt : typeof goal === "string" ? goal : "";
    prompt ||= `plan from ${planFile === "-" ? "stdin" : path.basename(planFile)}`;
  }
  if (!prompt) throw new UsageError("say what to run: crane run <prompt>, or --plan <file.json>", command);
  body.prompt = prompt;
  const planner = str(values.planner);
  if (planner !== undefined) {
    if (!["auto", "rules", "llm"].includes(planner)) throw new UsageError("--planner is auto, rules or llm", command);
    body.planner = planner;
  }
  const pairs = list(values.option);
  if (pairs.length > 0) {
    body.options = { ...((body.options as object | undefined) ?? {}), ...parseOptionPairs(pairs, command) };
  }
  return body as CreateRunBody;
}

async function started(ctx: Parameters<CommandSpec["action"]>[0], run: Run, values: Values): Promise<number> {
  if (values.detach) {
    // The id alone, for `crane watch $(crane run … --detach)`; where the run stands goes to stderr.
    if (ctx.json) ctx.out.json(run);
    else {
      ctx.out.line(run.run_id);
      ctx.out.error(`run ${run.run_id} ${run.status}`);
    }
    return 0;
  }
  return follow(ctx, run, `run ${run.run_id}`);
}

const watchCommand: CommandSpec = {
  name: "watch",
  args: "<run>",
  summary: "Follow a run live (from its first event) until it ends",
  positionals: { min: 1, max: 1 },
  options: {},
  async action(ctx, [runId]) {
    const run = await ctx.client.getRun(runId as string);
    return follow(ctx, run, `run ${run.run_id}: ${compact(run.prompt, 100)}`);
  },
};

const rerunCommand: CommandSpec = {
  name: "rerun",
  args: "<run>",
  summary: "Run a finished run's plan again (steps that succeeded are reused) and follow it",
  positionals: { min: 1, max: 1 },
  options: {
    from: { type: "string", value: "<step>", help: "run this step and everything downstream of it again" },
    input: { type: "string", multiple: true, value: "<step>=<json>", help: "replace a step's tool_input" },
    option: { type: "string", multiple: true, value: "<k=v>", help: "override a run option" },
    "idempotency-key": { type: "string", value: "<key>", help: "the same key and body within 24 h give the same run" },
    detach: { type: "boolean", help: "print the new run's id and exit without following it" },
  },
  async action(ctx, [runId], values) {
    const body: Record<string, unknown> = {};
    const from = str(values.from);
    if (from !== undefined) body.from_step = integer(from, "--from", rerunCommand);
    const inputs: Record<string, unknown> = {};
    for (const pair of list(values.input)) {
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new UsageError(`--input takes <step>=<json>, not '${pair}'`, rerunCommand);
      const step = integer(pair.slice(0, eq), "--input's step", rerunCommand);
      inputs[String(step)] = jsonArg(pair.slice(eq + 1), `--input ${step}`, rerunCommand);
    }
    if (Object.keys(inputs).length > 0) body.tool_inputs = inputs;
    const pairs = list(values.option);
    if (pairs.length > 0) body.options = parseOptionPairs(pairs, rerunCommand);
    const run = await ctx.client.rerun(runId as string, body, { idempotencyKey: str(values["idempotency-key"]) });
    return started(ctx, run, values);
  },
};

const runsCommand: CommandSpec = {
  name: "runs",
  args: "",
  summary: "List runs, newest first, with filters",
  positionals: { min: 0, max: 0 },
  options: {
    status: { type: "string", value: "<status>", help: STATUSES.join("|") },
    tool: { type: "string", value: "<tool>", help: "runs with a step of this tool" },
    since: { type: "string", value: "<iso>", help: "created at or after" },
    until: { type: "string", value: "<iso>", help: "created before" },
    q: { type: "string", value: "<text>", help: "prompt contains (case-insensitive)" },
    "rerun-of": { type: "string", value: "<run>", help: "the reruns of a run" },
    limit: { type: "string", value: "<n>", help: "runs per page (1–100, default 20)" },
    cursor: { type: "string", value: "<cursor>", help: "continue from a previous page" },
    all: { type: "boolean", help: "every page, not just the first" },
  },
  async action(ctx, _positionals, values) {
    const status = str(values.status);
    if (status !== undefined && !STATUSES.includes(status as RunStatus)) {
      throw new UsageError(`--status is one of ${STATUSES.join(", ")}`, runsCommand);
    }
    const query: ListRunsParams = {
      status: status as RunStatus | undefined,
      tool: str(values.tool),
      since: str(values.since),
      until: str(values.until),
      q: str(values.q),
      rerun_of: str(values["rerun-of"]),
      limit: values.limit === undefined ? 20 : integer(str(values.limit), "--limit", runsCommand),
      cursor: str(values.cursor),
    };
    let items: RunSummary[] = [];
    let next: string | null = null;
    if (values.all) {
      for await (const run of ctx.client.runs(query)) items.push(run);
    } else {
      ({ items, next } = await ctx.client.listRuns(query));
    }
    if (ctx.json) {
      // stdout stays the array; the way to the next page goes to stderr.
      ctx.out.json(items);
      if (next) ctx.out.error(`more: crane runs --cursor ${next}  (or --all)`);
      return 0;
    }
    const c = ctx.out.colour;
    if (items.length === 0) {
      ctx.out.line(c.dim("no runs"));
      return 0;
    }
    const rows = items.map((r) => [
      r.run_id,
      paintStatus(c, r.status),
      String(r.step_count),
      duration(r.duration_ms),
      when(r.created_at),
      compact(r.prompt, 60),
    ]);
    for (const line of table(["RUN", "STATUS", "STEPS", "DURATION", "CREATED (UTC)", "PROMPT"], rows))
      ctx.out.line(line);
    if (next) ctx.out.line(c.dim(`more: crane runs --cursor ${next}  (or --all)`));
    return 0;
  },
};

const showCommand: CommandSpec = {
  name: "show",
  args: "<run>",
  summary: "A run: its status, steps, result or error",
  positionals: { min: 1, max: 1 },
  options: {},
  async action(ctx, [runId]) {
    const run = await ctx.client.getRun(runId as string);
    if (ctx.json) {
      ctx.out.json(run);
      return 0;
    }
    const c = ctx.out.colour;
    const out = ctx.out;
    out.line(`${c.bold("run")}      ${run.run_id}`);
    out.line(`${c.bold("prompt")}   ${run.prompt}`);
    out.line(`${c.bold("status")}   ${paintStatus(c, run.status)}`);
    out.line(`${c.bold("planner")}  ${run.plan?.planner ?? "-"}`);
    out.line(`${c.bold("created")}  ${when(run.created_at)}`);
    if (run.completed_at) {
      out.line(`${c.bold("took")}     ${duration(Date.parse(run.completed_at) - Date.parse(run.created_at))}`);
    }
    if (run.rerun_of) {
      out.line(
        `${c.bold("rerun of")} ${run.rerun_of.run_id}${run.rerun_of.from_step ? ` from step ${run.rerun_of.from_step}` : ""}`,
      );
    }
    if (run.execution_log.length > 0) {
      out.line();
      const rows = run.execution_log.map((s) => [
        String(s.step_number),
        s.tool_name,
        paintStatus(c, s.status),
        String(s.attempts),
        duration(s.duration_ms),
        s.error
          ? c.red(compact(s.error, 70))
          : s.waiting
            ? c.yellow(compact(s.waiting.message ?? s.waiting.name ?? s.waiting.kind, 70))
            : s.status === "succeeded"
              ? compact(s.output, 70)
              : "",
      ]);
      for (const line of table(["STEP", "TOOL", "STATUS", "ATTEMPTS", "DURATION", "OUTPUT / ERROR"], rows))
        out.line(line);
    }
    for (const w of run.waiting_for) {
      out.line();
      out.line(
        c.yellow(
          `step ${w.step_number} waits for ${w.kind === "timer" ? "a timer" : w.kind}${w.until ? ` until ${when(w.until)} UTC` : ""}`,
        ),
      );
      if (w.kind === "approval")
        out.line(`  crane approve ${run.run_id} ${w.step_number}  |  crane reject ${run.run_id} ${w.step_number}`);
      if (w.kind === "signal") out.line(`  crane signal ${run.run_id} ${w.name ?? "<name>"} --data '<json>'`);
      if (w.callback_url) out.line(`  callback: ${w.callback_url}`);
    }
    if (run.compensation) {
      out.line();
      out.line(`${c.bold("compensation")} ${paintStatus(c, run.compensation.status)}`);
      for (const s of run.compensation.steps) {
        out.line(
          `  undo step ${s.step_number} ${s.tool_name}: ${paintStatus(c, s.status)}${s.error ? ` ${s.error}` : ""}`,
        );
      }
    }
    out.line();
    if (run.status === "completed") out.line(`${c.bold("result:")} ${pretty(run.result)}`);
    else if (run.error) out.line(`${c.bold("error:")} ${run.error}`);
    return 0;
  },
};

const eventsCommand: CommandSpec = {
  name: "events",
  args: "<run>",
  summary: "A run's event log",
  positionals: { min: 1, max: 1 },
  options: {
    after: { type: "string", value: "<seq>", help: "only events after this sequence number" },
    limit: { type: "string", value: "<n>", help: "at most this many (default: all)" },
  },
  async action(ctx, [runId], values) {
    const after = values.after === undefined ? 0 : integer(str(values.after), "--after", eventsCommand, 0);
    const limit = values.limit === undefined ? null : integer(str(values.limit), "--limit", eventsCommand);
    const events = [];
    for await (const e of ctx.client.allEvents(runId as string, { after })) {
      if (limit !== null && events.length >= limit) break;
      events.push(e);
    }
    if (ctx.json) {
      ctx.out.json(events);
      return 0;
    }
    const c = ctx.out.colour;
    const rows = events.map((e) => [
      String(e.seq),
      when(e.at),
      e.type,
      e.step_number === undefined ? "" : String(e.step_number),
      e.attempt === undefined ? "" : String(e.attempt),
      e.data === undefined ? "" : c.dim(compact(e.data, 80)),
    ]);
    for (const line of table(["SEQ", "AT (UTC)", "TYPE", "STEP", "ATTEMPT", "DATA"], rows)) ctx.out.line(line);
    return 0;
  },
};

const cancelCommand: CommandSpec = {
  name: "cancel",
  args: "<run>",
  summary: "Cancel a run that has not finished",
  positionals: { min: 1, max: 1 },
  options: {
    compensate: { type: "boolean", help: "undo the steps that succeeded (saga)" },
    reason: { type: "string", value: "<text>", help: "why, kept as the run's error" },
  },
  async action(ctx, [runId], values) {
    const body: { compensate?: boolean; reason?: string } = {};
    if (values.compensate) body.compensate = true;
    if (str(values.reason) !== undefined) body.reason = str(values.reason);
    const run = await ctx.client.cancel(runId as string, Object.keys(body).length > 0 ? body : undefined);
    if (ctx.json) ctx.out.json(run);
    else {
      ctx.out.line(`run ${run.run_id} ${paintStatus(ctx.out.colour, run.status)}${run.error ? `: ${run.error}` : ""}`);
      if (run.compensation) ctx.out.line(`compensation ${run.compensation.status}`);
    }
    return 0;
  },
};

export const runCommands = [
  runCommand,
  watchCommand,
  runsCommand,
  showCommand,
  eventsCommand,
  cancelCommand,
  rerunCommand,
];
