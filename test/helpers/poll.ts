/**
 * Polls `fn` until it returns something other than null, or fails after `timeoutMs` with what it
 * waited for (and `context()`, e.g. the tail of a server's output). For Node-side suites that
 * drive `wrangler dev`; in-runtime suites use the helpers in api.ts.
 */
export async function poll<T>(
  what: string,
  fn: () => Promise<T | null>,
  timeoutMs = 60_000,
  context: () => string = () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== null) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}\n${context()}`);
}
