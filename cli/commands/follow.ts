import { isTerminalEvent, type Run, type RunStatus } from "../../src/client";
import { asLiveMessage, asRun } from "../answers";
import type { Context } from "../args";
import { printable } from "../format";
import { RunProgress } from "../progress";

/** Exit status of a command that ends with a run (followed to its end): 0 completed, 1 failed or cancelled. */
const exitFor = (status: RunStatus): number => (status === "completed" ? 0 : 1);

export const INTERRUPTED = 130;
/**
 * The reader of stdout went away while a run was being followed (`crane watch … | head -1`):
 * 128 + SIGPIPE, what a shell reports for a command ended by a closed pipe. The run goes on.
 */
export const READER_GONE = 141;

/**
 * Follows a run live from its first event until it ends, one line per step change, then prints
 * the result (or, with --json, the final Run) and answers the exit status. Ctrl-C stops following,
 * not the run; so does a reader of stdout that went away, quietly.
 */
export async function follow(ctx: Context, run: Run, heading: string): Promise<number> {
  const { out, client } = ctx;
  const progress = new RunProgress(out, run.run_id);
  if (!ctx.json) {
    out.line(heading);
    progress.start();
  }
  const stop = AbortSignal.any([ctx.interrupt, ctx.readerGone]);
  let ended = false;
  try {
    // From seq 0: the lines tell the whole story even when the run moved on before the socket opened.
    for await (const message of client.watch(run.run_id, { after: 0, signal: stop })) {
      asLiveMessage(message);
      if (message.type === "event" && isTerminalEvent(message.event)) ended = true;
      if (!ctx.json) progress.handle(message);
    }
  } finally {
    progress.stop();
  }
  // A reader that left after the run's last event cut nothing short: the run's outcome is the status.
  if (ctx.readerGone.aborted && !ended) return READER_GONE;
  if (ctx.interrupt.aborted && !ended) {
    const id = printable(run.run_id);
    out.error(`stopped following run ${id}; it goes on (crane watch ${id})`);
    return INTERRUPTED;
  }
  const final = asRun(await client.getRun(run.run_id));
  if (ctx.json) out.json(final);
  else progress.finish(final);
  return exitFor(final.status);
}
