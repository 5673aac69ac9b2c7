import { log } from "../observability/log";
import { backoffDelay } from "../run/backoff";
import type { LlmProvider } from "./config";
import { openAiOnce } from "./openai";
import { type ChatMessage, type ChatOptions, type ChatResult, LlmError, MAX_PROMPT_CHARS } from "./types";
import { workersAiOnce } from "./workers-ai";

export * from "./types";

/** Attempts per call: the first and two retries, for 429, 5xx, network errors and timeouts. */
const MAX_TRIES = 3;
const RETRY = { max_attempts: MAX_TRIES, base_delay_ms: 250, factor: 2, max_delay_ms: 2_000 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const promptSize = (messages: ChatMessage[]) =>
  messages.reduce(
    (n, m) =>
      n + (m.content?.length ?? 0) + ("tool_calls" in m && m.tool_calls ? JSON.stringify(m.tool_calls).length : 0),
    0,
  );

/**
 * One chat completion, with a per-try timeout and up to two jittered retries of failures a
 * retry can fix (429, 5xx, network, timeout). Prompts are capped at `MAX_PROMPT_CHARS`. A failure
 * carries what it took (`latency_ms` over all tries, `tries`), so telemetry records what happened.
 */
export async function chat(provider: LlmProvider, messages: ChatMessage[], opts: ChatOptions): Promise<ChatResult> {
  const size = promptSize(messages);
  if (size > MAX_PROMPT_CHARS)
    throw new LlmError("too_large", `Prompt of ${size} characters is over ${MAX_PROMPT_CHARS}`, false);
  const started = Date.now();
  let tryDelta: ReturnType<typeof firstMarked> | null = null;
  for (let tries = 1; ; tries++) {
    try {
      const marked = opts.onDelta ? firstMarked(opts.onDelta) : null;
      tryDelta = marked;
      const once = { ...opts, ...(marked ? { onDelta: marked.onDelta } : {}) };
      const result =
        provider.kind === "openai"
          ? await openAiOnce(provider, messages, once)
          : await workersAiOnce(provider, messages, once);
      return { ...result, latency_ms: Date.now() - started, tries };
    } catch (thrown) {
      // Watchers drop what a failed try wrote, whether or not another try writes anything.
      if (tryDelta?.wrote()) opts.onDelta?.("", true);
      const err = asLlmError(thrown);
      err.latency_ms = Date.now() - started;
      err.tries = tries;
      if (!err.retryable || tries >= MAX_TRIES) throw err;
      // A provider that says when to come back is heard: soon, by this loop; later, by the
      // caller's own retry (a step's backoff), with the wait it asked for.
      if (err.retryAfterMs !== null && err.retryAfterMs > MAX_INLINE_RETRY_AFTER_MS) throw err;
      await sleep(Math.max(50, err.retryAfterMs ?? 0, backoffDelay(RETRY, tries, Math.random)));
    }
  }
}

/** Marks the first piece of text of a try, so that watchers drop what a failed try wrote. */
function firstMarked(onDelta: (text: string, reset?: boolean) => void) {
  let first = true;
  return {
    onDelta: (text: string) => {
      onDelta(text, first);
      first = false;
    },
    wrote: () => !first,
  };
}

/** Longest `Retry-After` this loop waits out itself; a longer one ends the call (retryable). */
const MAX_INLINE_RETRY_AFTER_MS = 5_000;

/**
 * What a provider client threw, as an `LlmError`. Anything else is an answer the client could not
 * read (a shape no check foresaw): a bad response, not retried, never an internal error that
 * would fail a request with a 500 or leave a queue message to be redelivered.
 */
function asLlmError(err: unknown): LlmError {
  if (err instanceof LlmError) return err;
  log("warn", "provider answer could not be read", { error: err });
  return new LlmError("bad_response", "Provider answer could not be read", false);
}
