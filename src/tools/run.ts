import type { Json } from "../contracts/common";
import { LIMITS } from "../contracts/limits";
import { classifyError, type FailureInfo, nonRetryable, ToolError } from "./errors";
import { parseToolInput } from "./input";
import type { ToolRegistry } from "./registry";
import type { AttemptGrant, AttemptOutcome, Tool, ToolContext } from "./types";

/** The tool and its validated input, or the non-retried failure that bad input is. */
function prepare(registry: ToolRegistry, grant: AttemptGrant): { tool: Tool; input: unknown } | { error: FailureInfo } {
  const tool = registry.get(grant.tool_name);
  if (!tool) return { error: classifyError(nonRetryable(`Unknown tool '${grant.tool_name}'`)) };
  const parsed = parseToolInput(tool, grant.input);
  if (!parsed.ok) return { error: classifyError(nonRetryable(parsed.message)) };
  return { tool, input: parsed.data };
}

/**
 * Why an output cannot be stored as a step's output (over `LIMITS.maxOutputBytes` as JSON), or null
 * when it fits. A tool's output and an agent step's answer fail alike, not retried.
 */
export function oversizedOutput(output: Json): ToolError | null {
  const size = outputBytes(output);
  return size > LIMITS.maxOutputBytes ? outputTooLarge(size) : null;
}

/** The output's size as JSON in UTF-8, or 0 when it surely fits (most outputs: no encoding needed). */
export function outputBytes(output: Json): number {
  const json = JSON.stringify(output);
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  return json.length * 3 <= LIMITS.maxOutputBytes ? 0 : new TextEncoder().encode(json).length;
}

/** The non-retried failure of an output of `size` bytes, over the limit. */
export const outputTooLarge = (size: number): ToolError =>
  nonRetryable(`Output of ${size} bytes exceeds the ${LIMITS.maxOutputBytes}-byte limit`, "output_too_large");

/** The output, if it fits the stored-output limit. */
function capped(output: Json | undefined): Json {
  const problem = oversizedOutput(output ?? null);
  if (problem) throw problem;
  return output ?? null;
}

/**
 * Runs one attempt of a pure tool synchronously, inside the coordinator (no queue hop): same
 * validation, same output limit, same outcome shape as `runTool`.
 */
export function runInline(registry: ToolRegistry, grant: AttemptGrant): AttemptOutcome {
  const prepared = prepare(registry, grant);
  if ("error" in prepared) return { ok: false, error: prepared.error };
  const { tool, input } = prepared;
  if (!tool.executeInline) return { ok: false, error: classifyError(nonRetryable(`${tool.name} cannot run inline`)) };
  try {
    return { ok: true, output: capped(tool.executeInline(input)) };
  } catch (err) {
    return { ok: false, error: classifyError(err) };
  }
}

/**
 * Runs one attempt of a tool under its timeout and turns whatever happens into an outcome.
 * The timeout aborts `ctx.signal`; a tool that ignores the signal still loses the race.
 */
export async function runTool(
  registry: ToolRegistry,
  grant: AttemptGrant,
  ctx: Omit<ToolContext, "signal" | "idempotencyKey">,
  /** Test-only extra latency before the tool starts (fault injection); still under the timeout. */
  injectedDelayMs = 0,
  /** Aborted when the attempt turns out not to be granted after all (it was run on its message's grant). */
  stop?: AbortSignal,
): Promise<AttemptOutcome> {
  const prepared = prepare(registry, grant);
  if ("error" in prepared) return { ok: false, error: prepared.error };
  const { tool, input } = prepared;
  // A timer we clear ourselves (not AbortSignal.timeout) so that a tool that finishes in time
  // leaves no timeout rejection behind.
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new ToolError("Step timed out", { retryable: true, code: "timeout" });
      controller.abort(err);
      reject(err);
    }, grant.timeout_ms);
  });
  const stopped = new Promise<never>((_, reject) => {
    stop?.addEventListener(
      "abort",
      () => {
        const err = new ToolError("Attempt not granted", { retryable: false, code: "not_granted" });
        controller.abort(err);
        reject(err);
      },
      { once: true },
    );
  });
  stopped.catch(() => {}); // it may lose the race after the tool finished
  try {
    const execute = async () => {
      if (injectedDelayMs > 0) await new Promise((r) => setTimeout(r, injectedDelayMs));
      return tool.execute(input, { ...ctx, signal: controller.signal, idempotencyKey: grant.idempotency_key });
    };
    return { ok: true, output: capped((await Promise.race([execute(), timedOut, stopped])) as Json) };
  } catch (err) {
    return { ok: false, error: classifyError(err) };
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}
