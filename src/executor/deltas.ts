/**
 * Collects the text a model streams and passes it on at most every `everyMs` (one RPC to the
 * run's coordinator per batch, not per token). `flush` sends what is left; the consumer calls it
 * before it reports the attempt, so watchers get all of the text before `step.succeeded`.
 */
export function coalesce(send: (text: string) => Promise<void>, everyMs = 100) {
  let pending = "";
  let timer: ReturnType<typeof setTimeout> | null = null;
  let chain: Promise<void> = Promise.resolve();
  const drain = () => {
    timer = null;
    if (pending === "") return;
    const text = pending;
    pending = "";
    // In order, one at a time; a failed send loses only its text (deltas are best effort).
    chain = chain.then(() => send(text).catch(() => undefined));
  };
  return {
    push(text: string): void {
      pending += text;
      timer ??= setTimeout(drain, everyMs);
    },
    async flush(): Promise<void> {
      if (timer !== null) clearTimeout(timer);
      drain();
      await chain;
    },
  };
}
