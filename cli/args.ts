import { parseArgs } from "node:util";
import type { CraneClient } from "../src/client";
import type { Output } from "./output";

/** A mistake in how the command was typed: exit status 2, with the command's usage. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: CommandSpec,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

export interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  /** Placeholder of the value in the help text (`<file>`). */
  value?: string;
  help: string;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Context {
  client: CraneClient;
  out: Output;
  json: boolean;
  url: string;
  /** Ctrl-C: commands that follow a run stop following it. */
  interrupt: AbortSignal;
  /** Aborted when stdout's reader went away (EPIPE): commands that follow a run stop following it. */
  readerGone: AbortSignal;
}

export interface CommandSpec {
  /** `run`, or `keys create` for a subcommand. */
  name: string;
  args: string;
  summary: string;
  positionals: { min: number; max: number };
  options: Record<string, OptionSpec>;
  action(ctx: Context, positionals: string[], values: Values): Promise<number>;
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: "string", value: "<url>", help: "Crane's URL (env CRANE_URL, default http://localhost:8787)" },
  "api-key": { type: "string", value: "<key>", help: "API key (env CRANE_API_KEY, default crane-dev-key)" },
  "admin-token": {
    type: "string",
    value: "<token>",
    help: "admin token for `keys` (env CRANE_ADMIN_TOKEN, default crane-dev-admin)",
  },
  json: { type: "boolean", help: "machine output: JSON on stdout, nothing else" },
  help: { type: "boolean", short: "h", help: "show help" },
  version: { type: "boolean", help: "print the version" },
};

type ParseOptions = NonNullable<Parameters<typeof parseArgs>[0]>["options"];

function parseOptions(specs: Record<string, OptionSpec>): ParseOptions {
  const options: ParseOptions = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  return options;
}

export interface Parsed {
  command: CommandSpec | null;
  positionals: string[];
  values: Values;
}

/**
 * Finds the command (the first one or two words) and parses the rest strictly against its
 * options and the global ones, which may come anywhere on the line.
 */
export function parse(argv: string[], commands: CommandSpec[]): Parsed {
  const all: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
  for (const c of commands) Object.assign(all, c.options);
  // A lenient pass only to find the command words: option values must not be taken for them.
  const loose = parseArgs({ args: argv, options: parseOptions(all), strict: false, allowPositionals: true });
  const words = loose.positionals;
  const command =
    commands.find((c) => c.name === `${words[0]} ${words[1]}`) ?? commands.find((c) => c.name === words[0]) ?? null;
  const group = command === null && commands.some((c) => c.name.startsWith(`${words[0]} `));
  if (command === null) {
    // `crane --url` (nothing after it): the lenient pass takes a value-less string option for `true`.
    for (const [name, value] of Object.entries(loose.values)) {
      if (value === true && all[name]?.type === "string") throw new UsageError(needsValue(name, all[name]));
    }
    if (words.length === 0 || words[0] === "help")
      return { command: null, positionals: words.slice(1), values: loose.values };
    if (loose.values.help) return { command: null, positionals: words, values: loose.values };
    if (!group) throw new UsageError(`unknown command '${words[0]}'`);
    const subs = commands.filter((c) => c.name.startsWith(`${words[0]} `)).map((c) => c.name.split(" ")[1]);
    throw new UsageError(
      words[1] === undefined
        ? `'${words[0]}' needs a subcommand: ${subs.join(", ")}`
        : `unknown subcommand '${words[0]} ${words[1]}' (one of ${subs.join(", ")})`,
    );
  }
  let strict: ReturnType<typeof parseArgs>;
  try {
    strict = parseArgs({
      args: argv,
      options: parseOptions({ ...GLOBAL_OPTIONS, ...command.options }),
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    if (err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError(parseArgsMessage(err, argv, { ...GLOBAL_OPTIONS, ...command.options }), command);
    }
    throw err;
  }
  const positionals = strict.positionals.slice(command.name.split(" ").length);
  const values = strict.values as Values;
  if (!values.help) {
    const { min, max } = command.positionals;
    // Name only what is missing: `approve <run> <step>` given a run lacks `<step>`.
    const wanted = command.args.match(/<[^>]+>/g) ?? [];
    if (positionals.length < min) {
      const missing = wanted.slice(positionals.length, min).join(" ") || command.args;
      throw new UsageError(`missing argument${min - positionals.length > 1 ? "s" : ""}: ${missing}`, command);
    }
    if (positionals.length > max) throw new UsageError(`unexpected argument '${positionals[max]}'`, command);
    // `crane show ""` (an unset shell variable): an id or name can't be empty, and the server would
    // only answer for another path.
    const empty = wanted.findIndex((_, i) => positionals[i] !== undefined && positionals[i]?.trim() === "");
    if (empty >= 0) throw new UsageError(`${wanted[empty]} must not be empty`, command);
  }
  return { command, positionals, values };
}

function needsValue(name: string, spec: OptionSpec | undefined): string {
  return `--${name} needs a value: --${name} ${spec?.value ?? "<value>"}`;
}

/** A shell word as typed: quoted only when it must be. */
const shellWord = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`);

/** Node's parseArgs messages, reworded; the `--` hint keeps its advice with the user's own line. */
function parseArgsMessage(err: TypeError & { code?: unknown }, argv: string[], specs: Record<string, OptionSpec>) {
  const option = /^Option '--([^ ']+)/.exec(err.message)?.[1];
  if (err.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option !== undefined) {
    // Missing (`--url` last) or ambiguous (`--url --json`): either way the value was not given.
    const dash = err.message.includes("ambiguous")
      ? ` (a value that starts with '-' is written --${option}=<value>)`
      : "";
    return `${needsValue(option, specs[option])}${dash}`;
  }
  const unknown = /^Unknown option '([^']+)'/.exec(err.message)?.[1];
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && unknown !== undefined) {
    const end = argv.indexOf("--");
    const at = argv.findIndex((a, i) => (end < 0 || i < end) && a.startsWith(unknown));
    const word = argv[at];
    if (word !== undefined && /^-[^-]/.test(word)) {
      // `crane run calculate -1+2`: an argument, not an option. Moved after `--` it is one.
      const rest = argv.filter((_, i) => i !== at);
      const fixed = [...rest, ...(end < 0 ? ["--"] : []), word].map(shellWord).join(" ");
      return `'${word}' is not an option; an argument that starts with '-' goes after '--': crane ${fixed}`;
    }
    return `unknown option '${unknown}'`;
  }
  return err.message.split("\n")[0] ?? err.message;
}

/** `crane run --help`: the command's synopsis and its options. */
export function commandHelp(c: CommandSpec): string {
  const lines = [`usage: crane ${c.name}${c.args ? ` ${c.args}` : ""} [options]`, "", c.summary];
  const opts = Object.entries(c.options);
  if (opts.length > 0) {
    lines.push("", "options:");
    for (const [name, spec] of opts) {
      const flag = `--${name}${spec.value ? ` ${spec.value}` : ""}${spec.multiple ? " (repeatable)" : ""}`;
      lines.push(`  ${flag.padEnd(30)} ${spec.help}`);
    }
  }
  lines.push("", "global options: --url <url>  --api-key <key>  --admin-token <token>  --json  --help");
  return lines.join("\n");
}

/** `crane --help`: every command. */
export function mainHelp(commands: CommandSpec[]): string {
  const width = Math.max(...commands.map((c) => `${c.name} ${c.args}`.length));
  const lines = [
    "usage: crane <command> [arguments] [options]",
    "",
    "Runs prompts on Crane and follows them live.",
    "",
    "commands:",
    ...commands.map((c) => `  ${`${c.name} ${c.args}`.padEnd(width)}  ${c.summary}`),
    "",
    "global options:",
    ...Object.entries(GLOBAL_OPTIONS).map(
      ([name, s]) => `  ${`--${name}${s.value ? ` ${s.value}` : ""}`.padEnd(22)} ${s.help}`,
    ),
    "",
    "exit status: 0 done (run completed), 1 run failed or cancelled (or the server refused the request),",
    "             2 usage error, 3 server unreachable or key refused",
    "colour only on a terminal; NO_COLOR turns it off",
  ];
  return lines.join("\n");
}

/** A positive integer argument (a step number, a limit). */
export function integer(text: string | undefined, what: string, command: CommandSpec, min = 1): number {
  if (text === undefined || !/^\d{1,9}$/.test(text) || Number(text) < min) {
    throw new UsageError(`${what} must be an integer ≥ ${min}, not '${text ?? ""}'`, command);
  }
  return Number(text);
}

/** A JSON argument (`--data '{"ok":true}'`). */
export function jsonArg(text: string, what: string, command: CommandSpec): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    if (err instanceof SyntaxError) throw new UsageError(`${what} is not valid JSON: ${err.message}`, command);
    throw err;
  }
}

export const str = (v: Values[string]): string | undefined => (typeof v === "string" ? v : undefined);
export const list = (v: Values[string]): string[] => (Array.isArray(v) ? v : typeof v === "string" ? [v] : []);
