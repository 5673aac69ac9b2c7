// `crane`: the command line on `crane/client` (loaded by bin.ts once Node is new enough).
// Exit status: 0 done (a run completed), 1 a run failed or was cancelled, or the server refused
// the request or answered something else than the API; 2 usage error; 3 the server cannot be
// reached or refuses the key; 130 Ctrl-C; 141 stdout's reader left while a run was followed.
import { CraneClient, CraneConnectionError, CraneError } from "../src/client";
import { UnexpectedAnswer } from "./answers";
import { type CommandSpec, type Context, commandHelp, mainHelp, parse, str, UsageError } from "./args";
import { catalogCommands } from "./commands/catalog";
import { INTERRUPTED } from "./commands/follow";
import { keyCommands } from "./commands/keys";
import { runCommands } from "./commands/runs";
import { waitingCommands } from "./commands/waiting";
import { printable } from "./format";
import { Output } from "./output";
import { describeProblem as describe } from "./problem";

declare const CRANE_VERSION: string;

const COMMANDS: CommandSpec[] = [...runCommands, ...waitingCommands, ...catalogCommands, ...keyCommands];

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

/**
 * Crane's base URL from `--url` or CRANE_URL: http or https with a host. `where` names the source
 * in the message (`--url`, `CRANE_URL`).
 */
function baseUrl(text: string, where: string): string {
  let url: URL | null = null;
  try {
    url = new URL(text);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err; // ERR_INVALID_URL
  }
  if (url === null || !/^https?:$/.test(url.protocol) || !/^https?:\/\/[^/]/i.test(text) || url.hostname === "") {
    throw new UsageError(
      `${where} must be an http:// or https:// URL with a host, such as http://localhost:8787, not '${text}'`,
    );
  }
  return text;
}

async function main(argv: string[], out: Output, interrupt: AbortSignal, readerGone: AbortSignal): Promise<number> {
  const env = process.env;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv, COMMANDS);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    out.error(`crane: ${err.message}`);
    out.error(err.command ? commandHelp(err.command) : "run 'crane --help' for the commands");
    return EXIT.usage;
  }
  const { command, positionals, values } = parsed;
  if (values.version) {
    out.line(CRANE_VERSION);
    return EXIT.ok;
  }
  if (command === null) {
    const asked = positionals.join(" ");
    const topics = COMMANDS.filter((c) => c.name === asked || c.name.startsWith(`${asked} `));
    if (asked && topics.length > 0) out.line(topics.map(commandHelp).join("\n\n"));
    else if (positionals.length > 0) {
      out.error(`crane: unknown command '${positionals.join(" ")}'`);
      return EXIT.usage;
    } else if (values.help || argv[0] === "help") out.line(mainHelp(COMMANDS));
    else {
      // `crane` alone is a usage error; `crane --help` and `crane help` are not.
      out.error(mainHelp(COMMANDS));
      return EXIT.usage;
    }
    return EXIT.ok;
  }
  if (values.help) {
    out.line(commandHelp(command));
    return EXIT.ok;
  }
  // An empty variable is an unset one (as NO_COLOR's is): the default applies.
  const fromEnv = (name: string) => (env[name] === "" ? undefined : env[name]);
  let url: string;
  try {
    const flag = str(values.url);
    const fromVar = fromEnv("CRANE_URL");
    url =
      flag !== undefined
        ? baseUrl(flag, "--url")
        : fromVar !== undefined
          ? baseUrl(fromVar, "CRANE_URL")
          : "http://localhost:8787";
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    out.error(`crane: ${err.message}`);
    return EXIT.usage;
  }
  const client = new CraneClient({
    baseUrl: url,
    apiKey: str(values["api-key"]) ?? fromEnv("CRANE_API_KEY") ?? "crane-dev-key",
    adminToken: str(values["admin-token"]) ?? fromEnv("CRANE_ADMIN_TOKEN") ?? "crane-dev-admin",
  });
  const ctx: Context = { client, out, json: values.json === true, url: client.baseUrl, interrupt, readerGone };
  try {
    return await command.action(ctx, positionals, values);
  } catch (err) {
    if (err instanceof UsageError) {
      out.error(`crane: ${err.message}`);
      out.error(commandHelp(err.command ?? command));
      return EXIT.usage;
    }
    if (err instanceof CraneConnectionError) {
      out.error(`crane: ${printable(err.problem.detail)}`);
      return EXIT.unreachable;
    }
    if (err instanceof UnexpectedAnswer) {
      out.error(`crane: ${err.message} (is ${client.baseUrl} a Crane server of this version?)`);
      return EXIT.failed;
    }
    if (err instanceof CraneError && (err.status === 401 || err.status === 403)) {
      const which = command.name.startsWith("keys") ? "admin token" : "API key";
      out.error(`crane: the server refused the ${which}: ${describe(err)}`);
      return EXIT.unreachable;
    }
    if (err instanceof CraneError && err.status === 400) {
      // A bad parameter or filter the command passed on as given: the caller's to fix.
      out.error(`crane: ${describe(err)}`);
      return EXIT.usage;
    }
    if (err instanceof CraneError) {
      out.error(`crane: ${describe(err)}`);
      return EXIT.failed;
    }
    throw err;
  }
}

const out = new Output(process.stdout, process.stderr, process.env);
// `crane runs | head -1`: a reader that went away is not an error, and nothing is said about it.
// The command goes on without its output (its work, a listing, is done; its exit status stands),
// except one following a run, which stops following and exits 141 (see follow.ts).
const readerGone = new AbortController();
for (const name of ["stdout", "stderr"] as const) {
  process[name].on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
    out.readerGone(name);
    if (name === "stdout") readerGone.abort();
  });
}
const interrupt = new AbortController();
/** How long after Ctrl-C a command may take to wind down before the process leaves anyway. */
const INTERRUPT_GRACE_MS = 1000;
process.on("SIGINT", () => {
  // A second Ctrl-C leaves at once.
  if (interrupt.signal.aborted) process.exit(INTERRUPTED);
  interrupt.abort();
  // A command following a run stops following, says where the run is and exits 130 itself;
  // any other command (a listing, a request under way) is simply left.
  setTimeout(() => process.exit(INTERRUPTED), INTERRUPT_GRACE_MS);
});
let code: number;
try {
  code = await main(process.argv.slice(2), out, interrupt.signal, readerGone.signal);
} catch (err) {
  out.error(`crane: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  code = EXIT.failed;
}
await out.flush();
// Exit now: a live socket's close handshake can keep the event loop alive for seconds after
// the run ended (wrangler dev's proxy is slow to drop the TCP connection).
process.exit(code);
