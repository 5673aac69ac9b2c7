/**
 * Collects the text a model streams and passes it on at most every `everyMs` (one RPC to the
 * run's coordinator per batch, not per token). `flush` sends what is left; the consumer calls it
 * before it reports the attempt, so watchers get all of the text before `step.succeeded`. A piece
 * that starts a new try (`reset`) drops what is pending and is sent marked, so watchers drop what
 * they were shown of the failed try.
 */
export function coalesce(send: (text: string, reset: boolean) => Promise<void>, everyMs = 100) {
  let pending = "";
  let reset = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let chain: Promise<void> = Promise.resolve();
  const drain = () => {
    timer = null;
    if (pending === "" && !reset) return;
    const [text, fresh] = [pending, reset];
    pending = "";
    reset = false;
    // In order, one at a time; a failed send loses only its text (deltas are best effort).
    chain = chain.then(() => send(text, fresh).catch(() => undefined));
  };
  return {
    push(text: string, startsTry = false): void {
      if (startsTry) {
        pending = text;
        reset = true;
      } else pending += text;
      timer ??= setTimeout(drain, everyMs);
    },
    async flush(): Promise<void> {
      if (timer !== null) clearTimeout(timer);
      drain();
      await chain;
    },
  };
}
