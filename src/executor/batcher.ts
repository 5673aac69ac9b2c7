interface Waiting<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

/**
 * Gathers calls made close together into one: the calls made in the same turn go together once
 * it ends (a zero timer), and those made while a call is under way go together when it returns.
 * Nothing waits longer than the call before it. `send` answers one output per item, in order; a
 * failed send fails every call it carried.
 */
export function batcher<I, O>(send: (items: I[]) => Promise<O[]>): (item: I) => Promise<O> {
  let waiting: Waiting<I, O>[] = [];
  let busy = false;
  let scheduled = false;
  const flush = async () => {
    scheduled = false;
    const batch = waiting;
    waiting = [];
    busy = true;
    try {
      const out = await send(batch.map((w) => w.item));
      for (const [i, w] of batch.entries()) w.resolve(out[i] as O);
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      busy = false;
      if (waiting.length > 0) schedule();
    }
  };
  const schedule = () => {
    if (scheduled || busy) return;
    scheduled = true;
    setTimeout(flush, 0);
  };
  return (item) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      schedule();
    });
}
