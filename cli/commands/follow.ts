import type { Run, RunStatus } from "../../src/client";
import type { Context } from "../args";
import { RunProgress } from "../progress";

/** Exit status of a command that ends with a run (followed to its end): 0 completed, 1 failed or cancelled. */
const exitFor = (status: RunStatus): number => (status === "completed" ? 0 : 1);

export const INTERRUPTED = 130;

/**
 * Follows a run live from its first event until it ends, one line per step change, then prints
 * the result (or, with --json, the final Run) and answers the exit status. Ctrl-C stops following,
 * not the run.
 */
export async function follow(ctx: Context, run: Run, heading: string): Promise<number> {
  const { out, client } = ctx;
  const progress = new RunProgress(out, run.run_id);
  if (!ctx.json) {
    out.line(heading);
    progress.start();
  }
  try {
    // From seq 0: the lines tell the whole story even when the run moved on before the socket opened.
    for await (const message of client.watch(run.run_id, { after: 0, signal: ctx.interrupt })) {
      if (!ctx.json) progress.handle(message);
    }
  } finally {
    progress.stop();
  }
  if (ctx.interrupt.aborted) {
    out.error(`stopped following run ${run.run_id}; it goes on (crane watch ${run.run_id})`);
    return INTERRUPTED;
  }
  const final = await client.getRun(run.run_id);
  if (ctx.json) out.json(final);
  else progress.finish(final);
  return exitFor(final.status);
}
