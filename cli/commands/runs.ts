import { readFile } from "node:fs/promises";
import path from "node:path";
import type { CreateRunBody, ListRunsParams, Run, RunEvent, RunStatus, RunSummary } from "../../src/client";
import { asEvents, asPage, asRun, asRunSummaries } from "../answers";
import { type CommandSpec, type Context, integer, jsonArg, list, str, UsageError, type Values } from "../args";
import { compact, duration, pretty, printable, table, when } from "../format";
import type { Palette } from "../output";
import { follow, INTERRUPTED } from "./follow";

const STATUSES: RunStatus[] = ["pending", "running", "completed", "failed", "cancelled"];

/** A status as the server sent it, coloured by what it means (and printable, whatever it is). */
export function paintStatus(c: Palette, sent: unknown): string {
  const status = typeof sent === "string" ? printable(sent) : "?";
  if (status === "completed" || status === "succeeded") return c.green(status);
  if (status === "failed") return c.red(status);
  if (status === "cancelled" || status === "waiting") return c.yellow(status);
  if (status === "running") return c.cyan(status);
  return c.dim(status);
}

/** Keys that would reach an object's prototype rather than the options: refused, never assigned. */
const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/**
 * `--option max_parallel=4 --option retry.base_delay_ms=100`: values are JSON when they parse,
 * else strings. Set into a copy of `base` (a `--plan` body's options) key by key: `retry.x=1`
 * changes `retry.x` and keeps the rest of its `retry`.
 */
export function parseOptionPairs(
  pairs: string[],
  command: CommandSpec,
  base: Record<string, unknown> = {},
): Record<string, unknown> {
  const options: Record<string, unknown> = structuredClone(base);
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--option takes key=value, not '${pair}'`, command);
    const keys = pair.slice(0, eq).split(".");
    if (keys.some((k) => k === "")) throw new UsageError(`--option '${pair}' has an empty key`, command);
    const unsafe = keys.find((k) => UNSAFE_KEYS.has(k));
    if (unsafe !== undefined) throw new UsageError(`--option '${pair}': '${unsafe}' is not an option`, command);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err; // a bare word: the string itself
    }
    let target = options;
    for (const key of keys.slice(0, -1)) {
      const next = Object.hasOwn(target, key) ? target[key] : undefined;
      target[key] = typeof next === "object" && next !== null && !Array.isArray(next) ? next : {};
      target = target[key] as Record<string, unknown>;
    }
    target[keys.at(-1) as string] = value;
  }
  return options;
}

/**
 * Reads stdin to its end without blocking the event loop (a synchronous read of fd 0 would keep
 * Ctrl-C's handler from ever running). Answers null when Ctrl-C came first.
 */
async function readStdin({ interrupt, out }: Context): Promise<string | null> {
  if (interrupt.aborted) return null;
  // On a terminal the command would otherwise just sit there.
  if (process.stdin.isTTY) out.error("reading the plan from stdin… (end it with Ctrl-D)");
  const chunks: Buffer[] = [];
  const stop = () => process.stdin.destroy();
  interrupt.addEventListener("abort", stop, { once: true });
  try {
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  } catch (err) {
    if (!interrupt.aborted) throw err;
  } finally {
    interrupt.removeEventListener("abort", stop);
  }
  return interrupt.aborted ? null : Buffer.concat(chunks).toString("utf8");
}

/** `--plan`'s file (or stdin for `-`) as JSON; null when Ctrl-C stopped the reading. */
async function readJsonFile(file: string, command: CommandSpec, ctx: Context): Promise<unknown> {
  const name = file === "-" ? "stdin" : file;
  let text: string | null;
  try {
    text = file === "-" ? await readStdin(ctx) : await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${name}: ${(err as Error).message}`, command);
  }
  if (text === null) return null;
  return jsonArg(text, name, command);
}

const runCommand: CommandSpec = {
  name: "run",
  args: "[prompt…]",
  summary: "Start a run and follow it step by step until it ends; prints the result",
  positionals: { min: 0, max: Number.POSITIVE_INFINITY },
  options: {
    plan: {
      type: "string",
      value: "<file.json>",
      help: 'a plan {"steps": [...]} or a whole request body (- reads stdin)',
    },
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
    const planFile = str(values.plan);
    const file = planFile === undefined ? undefined : await readJsonFile(planFile, runCommand, ctx);
    if (ctx.interrupt.aborted) return INTERRUPTED;
    const body = buildRunBody(positionals, values, runCommand, file);
    const run = asRun(await ctx.client.createRun(body, { idempotencyKey: str(values["idempotency-key"]) }));
    return started(ctx, run, values);
  },
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The request body of `crane run`. `file` is `--plan`'s JSON: a plan (it has `steps`) or a whole
 * request body (`prompt`, `plan`, `planner`, `options`, any of them), which the flags then amend.
 */
export function buildRunBody(
  positionals: string[],
  values: Values,
  command: CommandSpec,
  file?: unknown,
): CreateRunBody {
  const planFile = str(values.plan) ?? "";
  const name = planFile === "-" ? "stdin" : planFile;
  let prompt = positionals.join(" ").trim();
  let body: Record<string, unknown> = {};
  if (file !== undefined) {
    if (!isObject(file)) {
      throw new UsageError(`${name} is neither a plan ({"steps": [...]}) nor a run body ({"prompt": ...})`, command);
    }
    if ("steps" in file) body.plan = file;
    else body = { ...file }; // a whole request body
    if (body.plan !== undefined && body.plan !== null && !isObject(body.plan)) {
      throw new UsageError(`${name}: "plan" must be a plan ({"steps": [...]}) or null`, command);
    }
    if (body.options !== undefined && !isObject(body.options)) {
      throw new UsageError(`${name}: "options" must be an object`, command);
    }
    const goal = isObject(body.plan) ? body.plan.final_goal : undefined;
    prompt ||= typeof body.prompt === "string" ? body.prompt.trim() : typeof goal === "string" ? goal : "";
    if (isObject(body.plan)) prompt ||= `plan from ${planFile === "-" ? "stdin" : path.basename(planFile)}`;
  }
  if (!prompt) {
    throw new UsageError(
      file === undefined
        ? "say what to run: crane run <prompt>, or --plan <file.json>"
        : `${name} has no plan and no prompt: say what to run (crane run <prompt> --plan ${planFile})`,
      command,
    );
  }
  body.prompt = prompt;
  const planner = str(values.planner);
  if (planner !== undefined) {
    if (!["auto", "rules", "llm"].includes(planner)) throw new UsageError("--planner is auto, rules or llm", command);
    body.planner = planner;
  }
  const pairs = list(values.option);
  if (pairs.length > 0) {
    body.options = parseOptionPairs(pairs, command, (body.options as Record<string, unknown> | undefined) ?? {});
  }
  return body as CreateRunBody;
}

async function started(ctx: Parameters<CommandSpec["action"]>[0], run: Run, values: Values): Promise<number> {
  if (values.detach) {
    // The id alone, for `crane watch $(crane run … --detach)`; where the run stands goes to stderr.
    if (ctx.json) ctx.out.json(run);
    else {
      ctx.out.line(printable(run.run_id));
      ctx.out.error(`run ${printable(run.run_id)} ${printable(run.status)}`);
    }
    return 0;
  }
  return follow(ctx, run, `run ${printable(run.run_id)}`);
}

const watchCommand: CommandSpec = {
  name: "watch",
  args: "<run>",
  summary: "Follow a run live (from its first event) until it ends",
  positionals: { min: 1, max: 1 },
  options: {},
  async action(ctx, [runId]) {
    const run = asRun(await ctx.client.getRun(runId as string));
    return follow(ctx, run, `run ${printable(run.run_id)}: ${compact(run.prompt, 100)}`);
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
    const run = asRun(
      await ctx.client.rerun(runId as string, body, { idempotencyKey: str(values["idempotency-key"]) }),
    );
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
    // Page by page here rather than through the client's iterator, so that each page's shape is checked.
    const items: RunSummary[] = [];
    let next: string | null = null;
    let cursor = query.cursor;
    do {
      const page = asPage(await ctx.client.listRuns({ ...query, cursor }), asRunSummaries);
      items.push(...page.items);
      next = typeof page.next === "string" ? page.next : null;
      cursor = next ?? undefined;
    } while (values.all && next !== null);
    if (ctx.json) {
      // stdout stays the array; the way to the next page goes to stderr.
      ctx.out.json(items);
      if (next) ctx.out.error(`more: crane runs --cursor ${printable(next)}  (or --all)`);
      return 0;
    }
    const c = ctx.out.colour;
    if (items.length === 0) {
      ctx.out.line(c.dim("no runs"));
      return 0;
    }
    const rows = items.map((r) => [
      printable(r.run_id),
      paintStatus(c, r.status),
      compact(r.step_count ?? "-"),
      duration(r.duration_ms),
      when(r.created_at),
      compact(r.prompt, 60),
    ]);
    for (const line of table(["RUN", "STATUS", "STEPS", "DURATION", "CREATED (UTC)", "PROMPT"], rows))
      ctx.out.line(line);
    if (next) ctx.out.line(c.dim(`more: crane runs --cursor ${printable(next)}  (or --all)`));
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
    const run = asRun(await ctx.client.getRun(runId as string));
    if (ctx.json) {
      ctx.out.json(run);
      return 0;
    }
    const c = ctx.out.colour;
    const out = ctx.out;
    out.line(`${c.bold("run")}      ${printable(run.run_id)}`);
    out.line(`${c.bold("prompt")}   ${printable(run.prompt)}`);
    out.line(`${c.bold("status")}   ${paintStatus(c, run.status)}`);
    out.line(`${c.bold("planner")}  ${compact(run.plan?.planner ?? "-")}`);
    out.line(`${c.bold("created")}  ${when(run.created_at)}`);
    if (run.completed_at) {
      out.line(`${c.bold("took")}     ${duration(Date.parse(run.completed_at) - Date.parse(run.created_at))}`);
    }
    if (run.rerun_of) {
      out.line(
        `${c.bold("rerun of")} ${compact(run.rerun_of.run_id)}${run.rerun_of.from_step ? ` from step ${compact(run.rerun_of.from_step)}` : ""}`,
      );
    }
    if (run.execution_log.length > 0) {
      out.line();
      const rows = run.execution_log.map((s) => [
        String(s.step_number),
        compact(s.tool_name),
        paintStatus(c, s.status),
        compact(s.attempts ?? "-"),
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
      const id = printable(run.run_id);
      const step = compact(w.step_number);
      out.line(
        c.yellow(
          `step ${step} waits for ${w.kind === "timer" ? "a timer" : compact(w.kind)}${w.until ? ` until ${when(w.until)} UTC` : ""}`,
        ),
      );
      if (w.kind === "approval") out.line(`  crane approve ${id} ${step}  |  crane reject ${id} ${step}`);
      if (w.kind === "signal") out.line(`  crane signal ${id} ${w.name ? compact(w.name) : "<name>"} --data '<json>'`);
      if (w.callback_url) out.line(`  callback: ${compact(w.callback_url, 1000)}`);
    }
    if (run.compensation) {
      out.line();
      out.line(`${c.bold("compensation")} ${paintStatus(c, run.compensation.status)}`);
      for (const s of Array.isArray(run.compensation.steps) ? run.compensation.steps : []) {
        out.line(
          `  undo step ${compact(s.step_number)} ${compact(s.tool_name)}: ${paintStatus(c, s.status)}${s.error ? ` ${compact(s.error, 1000)}` : ""}`,
        );
      }
    }
    out.line();
    if (run.status === "completed") out.line(`${c.bold("result:")} ${pretty(run.result)}`);
    else if (run.error) out.line(`${c.bold("error:")} ${printable(String(run.error))}`);
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
    // Page by page here rather than through the client's iterator, so that each page's shape is checked.
    const PAGE = 1000;
    const events: RunEvent[] = [];
    for (let from = after; limit === null || events.length < limit; ) {
      const page = asEvents(await ctx.client.events(runId as string, { after: from, limit: PAGE }));
      events.push(...page.slice(0, limit === null ? page.length : limit - events.length));
      const last = page.at(-1);
      if (!last || page.length < PAGE) break;
      from = last.seq;
    }
    if (ctx.json) {
      ctx.out.json(events);
      return 0;
    }
    const c = ctx.out.colour;
    const rows = events.map((e) => [
      String(e.seq),
      when(e.at),
      printable(e.type),
      e.step_number === undefined ? "" : compact(e.step_number),
      e.attempt === undefined ? "" : compact(e.attempt),
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
    const run = asRun(await ctx.client.cancel(runId as string, Object.keys(body).length > 0 ? body : undefined));
    if (ctx.json) ctx.out.json(run);
    else {
      const error = run.error ? `: ${printable(String(run.error))}` : "";
      ctx.out.line(`run ${printable(run.run_id)} ${paintStatus(ctx.out.colour, run.status)}${error}`);
      if (run.compensation) ctx.out.line(`compensation ${paintStatus(ctx.out.colour, run.compensation.status)}`);
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
